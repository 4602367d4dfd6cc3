// libFuzzer target: nbio::websocket::frame_parser on arbitrary bytes, as a server and as a
// client. The input is read whole, cut in two at a position taken from the input, and in reads
// of 1 to 64 bytes; every run must see the same messages, control frames and ending (payload
// bytes included), and no call may over-read, touch bytes it did not consume, hang or crash.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "nbio/websocket/frame_parser.hpp"

namespace {

namespace ws = nbio::websocket;

// Everything observable about one read of the stream, as text.
std::string read(std::string_view input, std::size_t first, std::size_t step, ws::role role,
                 bool deflate) {
  ws::frame_limits limits;
  limits.max_message = 1000;
  ws::frame_parser p(role, limits, deflate);
  std::string buf, out, message, before;
  std::size_t fed = 0, reads = 0;
  bool open = false;
  auto more = [&] {
    if (fed == input.size()) return false;
    const std::size_t n = std::min(reads++ == 0 ? first : step, input.size() - fed);
    buf.append(input.substr(fed, n));
    fed += n;
    return true;
  };
  more();
  for (int guard = 0; guard < 1 << 20; ++guard) {
    before = buf;
    const ws::frame_event e = p.next(std::span<char>(buf.data(), buf.size()));
    if (e.status == ws::frame_status::error) {
      if (ws::close_code_of(e.error) == ws::close_code::internal_error) std::abort();
      return out + "|error " + std::to_string(e.error.value());
    }
    if (e.status == ws::frame_status::closed) {
      if (!p.closed()) std::abort();
      return out + "|closed " + std::to_string(buf.size() + input.size() - fed);
    }
    if (e.status == ws::frame_status::incomplete) {
      if (e.consumed != 0 || buf != before) std::abort();
      if (more()) continue;
      return out + "|incomplete " + std::to_string(buf.size()) + (open ? " open" : "");
    }
    if (e.consumed == 0 || e.consumed > buf.size()) std::abort();
    if (buf.compare(e.consumed, std::string::npos, before, e.consumed) != 0) std::abort();
    if (e.payload.data() < buf.data() ||
        e.payload.data() + e.payload.size() > buf.data() + e.consumed)
      std::abort();
    if (e.kind == ws::event_kind::control) {
      if (e.payload.size() > ws::max_control_payload) std::abort();
      out += "c" + std::to_string(static_cast<int>(e.op)) + ":" + std::to_string(e.close_code) +
             ":" + std::string(e.payload) + ";";
    } else {
      if (e.kind != ws::event_kind::data || e.message_begin == open) std::abort();
      if (e.message_begin) message.clear();
      open = !e.message_end;
      message.append(e.payload);
      if (e.frame_end) message += "/";
      if (e.message_end) {
        out += "m" + std::to_string(static_cast<int>(e.op)) + (e.compressed ? "z" : "") + ":" +
               message + ";";
      }
    }
    if (p.in_message() != open) std::abort();
    buf.erase(0, e.consumed);
  }
  std::abort();  // no progress for a million calls: a hang
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const bool deflate = (data[0] & 1) != 0;
  const std::size_t step = (data[0] >> 1) % 64 + 1;
  const std::string_view input(reinterpret_cast<const char*>(data) + 3, size - 3);
  const std::size_t cut = (std::size_t{data[1]} << 8 | data[2]) % (input.size() + 1);
  for (const ws::role role : {ws::role::server, ws::role::client}) {
    const std::string whole = read(input, input.size(), input.size(), role, deflate);
    if (read(input, cut, input.size(), role, deflate) != whole) std::abort();
    if (read(input, step, step, role, deflate) != whole) std::abort();
  }
  return 0;
}
