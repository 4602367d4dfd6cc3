#include "ws_mode.hpp"

#include <array>
#include <cstring>

#include <nbio/websocket/frame.hpp>

namespace nbio_load {

namespace {

constexpr std::string_view status_prefix = "HTTP/1.1 101";
constexpr std::uint32_t mask_key = 0x37fa213d;

std::string make_frame(std::string_view payload, const std::uint32_t* key) {
  std::array<char, nbio::websocket::max_header_size> head{};
  const std::size_t n = nbio::websocket::encode_header(head, nbio::websocket::opcode::binary,
                                                       payload.size(), true, false, key);
  std::string out(head.data(), n);
  std::string body(payload);
  if (key) nbio::websocket::apply_mask(body, *key, 0);
  return out + body;
}

}  // namespace

ws_mode::ws_mode(const std::string& host, const std::string& path, std::size_t payload_size,
                 bool echo)
    : echo_(echo) {
  upgrade_ = "GET " + path + " HTTP/1.1\r\nHost: " + host +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  std::string payload(payload_size, '\0');
  for (std::size_t i = 0; i < payload_size; ++i)
    payload[i] = static_cast<char>('a' + i % 26);
  frame_ = make_frame(payload, &mask_key);
  echo_frame_ = make_frame(payload, nullptr);
}

reply_scan ws_mode::scan(std::uint64_t& state, std::string_view bytes) const noexcept {
  reply_scan r;
  while (!bytes.empty() && (state & 1) == 0) {
    // The handshake response: its status line must start "HTTP/1.1 101"; it ends at CRLFCRLF.
    std::uint64_t crlf = (state >> 1) & 3;
    std::uint64_t pos = (state >> 3) & 31;
    const char ch = bytes.front();
    bytes.remove_prefix(1);
    if (pos < status_prefix.size()) {
      if (ch != status_prefix[pos]) {
        r.error = true;
        return r;
      }
      ++pos;
    }
    static constexpr char want[4] = {'\r', '\n', '\r', '\n'};
    crlf = ch == want[crlf] ? crlf + 1 : (ch == '\r' ? 1 : 0);
    state = crlf == 4 ? 1 : (crlf << 1) | (pos << 3);
  }
  if (bytes.empty()) return r;
  if (!echo_) {  // nothing may follow the 101 of an idle connection
    r.error = true;
    return r;
  }
  const std::size_t size = echo_frame_.size();
  while (!bytes.empty()) {
    const std::size_t offset = static_cast<std::size_t>(state >> 1);
    const std::size_t n = std::min(bytes.size(), size - offset);
    if (std::memcmp(bytes.data(), echo_frame_.data() + offset, n) != 0) {
      r.error = true;
      return r;
    }
    bytes.remove_prefix(n);
    const std::size_t next = offset + n == size ? 0 : offset + n;
    if (next == 0) ++r.replies;
    state = (static_cast<std::uint64_t>(next) << 1) | 1;
  }
  return r;
}

}  // namespace nbio_load
