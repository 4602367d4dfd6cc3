// libFuzzer target: permessage-deflate (nbio/websocket/deflate.hpp). The first byte picks one of
// four parts, the next few its settings:
//   0  the inflater on arbitrary bytes (a stream of messages, with or without context), fed
//      whole and in pieces of 1 to 64 bytes with a small max_size: both ways must agree (the
//      same output, or the same error), no message may give more than max_size + 1 bytes, and
//      the only errors are message_too_big and bad_compressed_data;
//   1  round trips: the messages compressed with and without context takeover at three window
//      sizes (9-12, 13-14 and 15) inflate, whole and in pieces, with the same window and with
//      15, to exactly what went in;
//   2  negotiate_deflate and accept_deflate on an arbitrary string: no crash, window bits in
//      range, an answer that follows the options;
//   3  our own offer (client options from the input) against our own server (options from the
//      input): the server takes it unless it asks 8 of our compressor, the client takes the
//      answer, and both sides agree (windows and context takeover) so that every message
//      inflates.
// Messages are cut from the rest of the input by 2-byte big-endian lengths.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/websocket/deflate.hpp"
#include "nbio/websocket/error.hpp"

namespace {

namespace ws = nbio::websocket;

struct input {
  std::string_view s;
  std::uint8_t byte() {
    if (s.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(s[0]);
    s.remove_prefix(1);
    return b;
  }
  std::vector<std::string_view> messages() {
    std::vector<std::string_view> out;
    while (!s.empty()) {
      const std::size_t n = std::size_t{byte()} << 8 | byte();
      out.push_back(s.substr(0, n));
      s.remove_prefix(out.back().size());
    }
    return out;
  }
};

bool documented(std::error_code ec) {
  return ec == ws::errc::message_too_big || ec == ws::errc::bad_compressed_data;
}

// Inflates `payload` as one message, in pieces of `step` bytes (0: whole).
std::error_code inflate(ws::inflater& in, std::string_view payload, std::size_t step,
                        std::string& out, std::uint64_t max) {
  out.clear();
  if (step == 0) return in.inflate(payload, true, out, max);
  std::size_t at = 0;
  do {
    const std::string_view piece = payload.substr(at, step);
    at += piece.size();
    if (auto ec = in.inflate(piece, at == payload.size(), out, max)) return ec;
    if (out.size() > max) std::abort();
  } while (at < payload.size());
  return {};
}

void inflate_arbitrary(input in) {
  const std::uint8_t a = in.byte(), b = in.byte(), c = in.byte();
  const int bits = 8 + a % 8;
  const bool keep = (a & 0x80) != 0;
  const std::size_t step = b % 64 + 1;
  const std::uint64_t max = std::uint64_t{c} * 16 + (b >> 6);
  ws::inflater whole(bits), pieces(bits);
  std::string x, y;
  for (const std::string_view m : in.messages()) {
    const std::error_code e1 = inflate(whole, m, 0, x, max);
    const std::error_code e2 = inflate(pieces, m, step, y, max);
    if (x.size() > max + 1 || y.size() > max + 1) std::abort();
    if ((e1 && !documented(e1)) || (e2 && !documented(e2))) std::abort();
    if (e1 == ws::errc::message_too_big && x.size() != max + 1) std::abort();
    if (e1 != e2) std::abort();
    if (!e1 && x != y) std::abort();
    if (e1 || !keep) {
      whole.reset();
      pieces.reset();
    }
  }
}

void round_trip(input in) {
  const std::uint8_t a = in.byte(), b = in.byte();
  const int level = 1 + a % 9;
  const int mem_level = 1 + (a >> 4) % 9;
  const std::size_t step = b % 64 + 1;
  const std::vector<std::string_view> messages = in.messages();
  std::string z, out;
  for (const bool keep : {false, true}) {
    for (const int w : {9 + (b >> 6), 13 + (a >> 7), 15}) {  // 9-12, 13-14, 15
      ws::deflater d(w, keep, level, mem_level);
      ws::inflater same(w), wide(15);
      for (const std::string_view m : messages) {
        if (!d.compress(m, z) || z.empty()) std::abort();
        if (inflate(same, z, 0, out, m.size()) || out != m) std::abort();
        if (inflate(wide, z, step, out, m.size()) || out != m) std::abort();
        if (!keep) {
          same.reset();
          wide.reset();
        }
      }
    }
  }
}

bool bits_ok(std::uint8_t b) {
  return b >= 8 && b <= 15;
}

ws::deflate_options options(std::uint8_t a, std::uint8_t b) {
  ws::deflate_options o;
  o.enabled = (a & 0x80) == 0;
  o.memory = static_cast<ws::deflate_memory>(a % 3);
  o.server_no_context_takeover = (a & 0x04) != 0;
  o.client_no_context_takeover = (a & 0x08) != 0;
  o.server_max_window_bits = static_cast<std::uint8_t>(6 + b % 11);  // 6-16: clamped
  o.client_max_window_bits = static_cast<std::uint8_t>(6 + (b >> 4) % 11);
  return o;
}

void negotiate_arbitrary(input in) {
  const std::uint8_t a = in.byte(), b = in.byte();
  const ws::deflate_options o = options(a, b);
  const bool keep = (a & 0x40) != 0;
  ws::deflate_params p;
  std::string response;
  if (ws::negotiate_deflate(in.s, o, keep, p, response)) {
    if (!o.enabled || response.rfind("permessage-deflate", 0) != 0) std::abort();
    if (p.server_max_window_bits < 9 || p.server_max_window_bits > 15) std::abort();
    if (!bits_ok(p.client_max_window_bits)) std::abort();
    if ((!keep || o.server_no_context_takeover) && !p.server_no_context_takeover) std::abort();
    if ((!keep || o.client_no_context_takeover) && !p.client_no_context_takeover) std::abort();
  }
  std::error_code ec;
  if (ws::accept_deflate(in.s, o, p, ec)) {
    if (ec || !o.enabled) std::abort();
    if (!bits_ok(p.server_max_window_bits)) std::abort();
    if (p.client_max_window_bits < 9 || p.client_max_window_bits > 15) std::abort();
    const bool shared = o.memory == ws::deflate_memory::shared;
    if ((shared || o.server_no_context_takeover) && !p.server_no_context_takeover) std::abort();
    if ((shared || o.client_no_context_takeover) && !p.client_no_context_takeover) std::abort();
  } else if (ec && ec != ws::errc::handshake_extension) {
    std::abort();
  }
}

// Compresses a few messages with `tx`'s view and inflates them with `rx`'s, in the direction
// one side compresses (server: the server's parameters).
void check_direction(bool server, const ws::deflate_params& tx, const ws::deflate_params& rx,
                     std::string_view sample) {
  const int tx_bits = server ? tx.server_max_window_bits : tx.client_max_window_bits;
  const int rx_bits = server ? rx.server_max_window_bits : rx.client_max_window_bits;
  const bool tx_reset = server ? tx.server_no_context_takeover : tx.client_no_context_takeover;
  const bool rx_reset = server ? rx.server_no_context_takeover : rx.client_no_context_takeover;
  // The sender may always reset more and use a smaller window than the receiver expects, never
  // the other way round.
  if (rx_bits < tx_bits || (rx_reset && !tx_reset)) std::abort();
  ws::deflater d(tx_bits, !tx_reset);
  ws::inflater in(rx_bits);
  std::string z, out;
  for (int i = 0; i < 3; ++i) {
    if (!d.compress(sample, z)) std::abort();
    if (in.inflate(z, true, out, 1 << 20) || out != sample) std::abort();
    out.clear();
    if (rx_reset) in.reset();
  }
}

void negotiate_ours(input in) {
  const std::uint8_t a = in.byte(), b = in.byte(), c = in.byte(), d = in.byte();
  ws::deflate_options client = options(a & 0x7f, b), server = options(c & 0x7f, d);
  if (client.memory == ws::deflate_memory::sliding) client.memory = ws::deflate_memory::dedicated;
  const bool keep = (c & 0x40) != 0;
  const std::string offer = ws::deflate_offer(client);
  ws::deflate_params sp, cp;
  std::string response;
  const bool taken = ws::negotiate_deflate(offer, server, keep, sp, response);
  if (!taken) {
    // Declined only when disabled, or when the client asks 8 of our compressor.
    if (client.enabled && server.enabled && client.server_max_window_bits > 8) std::abort();
    return;
  }
  std::error_code ec;
  if (!ws::accept_deflate(response, client, cp, ec) || ec) std::abort();
  const std::string sample(in.s.substr(0, 4096));
  check_direction(true, sp, cp, sample);
  check_direction(false, cp, sp, sample);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  input in{std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
  switch (data[0] % 4) {
    case 0:
      inflate_arbitrary(in);
      break;
    case 1:
      round_trip(in);
      break;
    case 2:
      negotiate_arbitrary(in);
      break;
    default:
      negotiate_ours(in);
      break;
  }
  return 0;
}
