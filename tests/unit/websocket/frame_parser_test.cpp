// Unit: the WebSocket frame parser. Table-driven, one line per vector, and every vector, valid
// or hostile, is ground through every split (STYLE.md principle 13): whole, split at every
// byte into two reads, in random chunks and one byte at a time, each run playing a real
// connection (a buffer that keeps the unconsumed tail and grows with each read). Runs of one
// vector must agree on the messages and control frames seen (payload bytes included) and on
// how the stream ended; pieces differ by split, so they are joined per message first.
#include "nbio/websocket/frame_parser.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ws = nbio::websocket;
using ws::errc;
using ws::event_kind;
using ws::frame_status;
using ws::opcode;
using ws::role;
using namespace std::string_literals;

constexpr std::uint8_t fin = 0x80, rsv1 = 0x40, rsv2 = 0x20, rsv3 = 0x10;
constexpr std::uint8_t cont = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xa;

// A frame as a peer writes it: `b0` is FIN, RSV and opcode; the payload is masked with a fixed
// key when `masked`; `len_bytes` forces the length encoding (0: minimal, 2: 16-bit, 8: 64-bit).
std::string frame(std::uint8_t b0, std::string_view payload, bool masked, int len_bytes = 0) {
  std::string f(1, static_cast<char>(b0));
  const char m = masked ? '\x80' : 0;
  const std::uint64_t n = payload.size();
  if (len_bytes == 0) len_bytes = n <= 125 ? 0 : n <= 0xffff ? 2 : 8;
  if (len_bytes == 0) {
    f += static_cast<char>(m | static_cast<char>(n));
  } else {
    f += static_cast<char>(m | (len_bytes == 2 ? 126 : 127));
    for (int i = len_bytes - 1; i >= 0; --i)
      f += static_cast<char>(n >> (8 * i));
  }
  std::string body(payload);
  if (masked) {
    const char key[4] = {'\x37', '\xfa', '\x21', '\x3d'};
    f.append(key, 4);
    for (std::size_t i = 0; i < body.size(); ++i)
      body[i] = static_cast<char>(body[i] ^ key[i % 4]);
  }
  return f + body;
}
// From a client (masked: what a server reads) and from a server (unmasked: what a client reads).
std::string c(std::uint8_t b0, std::string_view payload = {}, int len_bytes = 0) {
  return frame(b0, payload, true, len_bytes);
}
std::string s(std::uint8_t b0, std::string_view payload = {}, int len_bytes = 0) {
  return frame(b0, payload, false, len_bytes);
}
std::string code(std::uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

// Payloads as the log shows them: printable ASCII as is, other bytes as \xHH, long ones by
// length and a hash (FNV-1a) so the tables stay short.
std::string show(std::string_view p) {
  if (p.size() > 64) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char ch : p)
      h = (h ^ ch) * 1099511628211ull;
    return "len=" + std::to_string(p.size()) + " fnv=" + std::to_string(h);
  }
  std::string out;
  for (unsigned char ch : p) {
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out += static_cast<char>(ch);
    } else {
      static const char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[ch >> 4];
      out += digits[ch & 15];
    }
  }
  return out;
}
std::string msg(std::string_view kind, std::string_view payload, int frames = 1) {
  return std::string(kind) + "[" + show(payload) + "]" +
         (frames > 1 ? "/" + std::to_string(frames) : "") + " ";
}

struct config {
  role r = role::server;
  ws::frame_limits limits{};
  bool deflate = false;
};

// Reads `wire` delivered in reads ending at `cuts` and logs what a connection would see.
std::string read(std::string_view wire, const std::vector<std::size_t>& cuts, const config& cfg) {
  ws::frame_parser p(cfg.r, cfg.limits, cfg.deflate);
  std::string buf, log, message;
  std::size_t fed = 0, next_cut = 0;
  int frames = 0;
  bool open = false, compressed = false;
  opcode message_op = opcode::continuation;
  const bool check_untouched = wire.size() <= 4096;
  auto more = [&] {
    if (fed == wire.size()) return false;
    const std::size_t to = next_cut < cuts.size() ? cuts[next_cut++] : wire.size();
    buf.append(wire.substr(fed, to - fed));
    fed = to;
    return true;
  };
  more();
  for (int guard = 0; guard < 1 << 22; ++guard) {
    const std::string before = check_untouched ? buf : std::string();
    const ws::frame_event e = p.next(std::span<char>(buf.data(), buf.size()));
    if (e.status == frame_status::error) {
      EXPECT_EQ(e.error.category(), ws::websocket_category());
      return log + "| error: " + e.error.message();
    }
    if (e.status == frame_status::closed) {
      return log + "| closed rest=" + std::to_string(buf.size() + wire.size() - fed);
    }
    if (e.status == frame_status::incomplete) {
      EXPECT_EQ(e.consumed, 0u);
      if (check_untouched) {
        EXPECT_EQ(buf, before);
      }
      if (more()) continue;
      if (buf.empty() && !open) return log + "| end";
      return log + "| incomplete rest=" + std::to_string(buf.size()) + (open ? " open" : "");
    }
    EXPECT_GT(e.consumed, 0u);
    EXPECT_LE(e.consumed, buf.size());
    if (!e.payload.empty()) {  // a view into the consumed part of the buffer
      EXPECT_GE(e.payload.data(), buf.data());
      EXPECT_LE(e.payload.data() + e.payload.size(), buf.data() + e.consumed);
    }
    if (check_untouched) {
      EXPECT_EQ(buf.substr(e.consumed), before.substr(e.consumed));
    }
    if (e.kind == event_kind::control) {
      EXPECT_EQ(e.consumed,
                static_cast<std::size_t>(e.payload.data() + e.payload.size() - buf.data()));
      if (e.op == opcode::close) {
        log += "close(" + std::to_string(e.close_code) + "," + show(e.close_reason) + ") ";
      } else {
        log += msg(e.op == opcode::ping ? "ping" : "pong", e.payload);
      }
    } else {
      EXPECT_EQ(e.kind, event_kind::data);
      EXPECT_EQ(e.message_begin, !open);
      if (e.message_begin) {
        open = true;
        message_op = e.op;
        compressed = e.compressed;
        message.clear();
        frames = 0;
      }
      EXPECT_EQ(e.op, message_op);
      EXPECT_EQ(e.compressed, compressed);
      EXPECT_TRUE(e.frame_end || !e.message_end);
      message.append(e.payload);
      if (e.frame_end) ++frames;
      if (e.message_end) {
        open = false;
        log += msg(
            std::string(message_op == opcode::text ? "text" : "binary") + (compressed ? "(z)" : ""),
            message, frames);
      }
    }
    EXPECT_EQ(p.in_message(), open);
    buf.erase(0, e.consumed);
  }
  ADD_FAILURE() << "no progress";
  return log;
}

// Every way to cut a wire of n bytes: whole, at each byte into two reads, random chunks of
// several sizes (fixed seeds; mt19937's output is fixed by the standard), one byte a read.
// Wires above 4 KiB (the 64 KiB vectors of Autobahn 1.1.6/1.1.7) are cut in two at every byte
// of their first and last 512 and every 61st byte between: their middle is payload alike
// everywhere, and every byte there would be 65,536 full reads (20 s, minutes under ASan).
std::vector<std::vector<std::size_t>> splits(std::size_t n) {
  std::vector<std::vector<std::size_t>> all{{}};
  for (std::size_t i = 1; i < n; ++i)
    if (n <= 4096 || i < 512 || n - i < 512 || i % 61 == 0) all.push_back({i});
  for (unsigned seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> cuts;
    for (std::size_t at = 1 + rng() % (4 * seed); at < n; at += 1 + rng() % (4 * seed))
      cuts.push_back(at);
    all.push_back(std::move(cuts));
  }
  std::vector<std::size_t> bytes;
  for (std::size_t i = 1; i < n; ++i)
    bytes.push_back(i);
  all.push_back(std::move(bytes));
  return all;
}

// Reads `wire` under every split; each run must log what the whole read logged.
std::string grind(std::string_view wire, const config& cfg = {}) {
  const std::string want = read(wire, {}, cfg);
  for (const std::vector<std::size_t>& cuts : splits(wire.size())) {
    const std::string got = read(wire, cuts, cfg);
    EXPECT_EQ(got, want) << cuts.size() << " cuts, first at " << (cuts.empty() ? 0 : cuts[0]);
    if (got != want) break;  // one failing split says it; the rest would repeat it
  }
  return want;
}

const config server{};
const config client{role::client};
config limited(std::uint64_t max_message, role r = role::server) {
  config cfg{r};
  cfg.limits.max_message = max_message;
  return cfg;
}
config deflate(role r = role::server) {
  config cfg{r};
  cfg.deflate = true;
  return cfg;
}

const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // "κόσμε"
const std::string bytes256 = [] {
  std::string b;
  for (int i = 0; i < 256; ++i)
    b += static_cast<char>(i);
  return b;
}();

// --- valid ------------------------------------------------------------------------------------

struct valid_vector {
  std::string wire;
  config cfg;
  std::string log;  // what a connection sees, then how the stream ended
};

const valid_vector valid_vectors[] = {
    // Autobahn 1.x: text and binary at the length boundaries (7, 16 and 64-bit lengths).
    {c(fin | text, "Hello"), server, msg("text", "Hello") + "| end"},
    {c(fin | text), server, msg("text", "") + "| end"},
    {c(fin | binary, bytes256), server, msg("binary", bytes256) + "| end"},
    {c(fin | binary), server, msg("binary", "") + "| end"},
    {c(fin | text, std::string(125, '*')), server, msg("text", std::string(125, '*')) + "| end"},
    {c(fin | text, std::string(126, '*')), server, msg("text", std::string(126, '*')) + "| end"},
    {c(fin | text, std::string(127, '*')), server, msg("text", std::string(127, '*')) + "| end"},
    {c(fin | binary, std::string(128, '\xfe')), server,
     msg("binary", std::string(128, '\xfe')) + "| end"},
    {c(fin | binary, std::string(65535, 'b')), server,
     msg("binary", std::string(65535, 'b')) + "| end"},
    {c(fin | text, std::string(65536, '*')), server,
     msg("text", std::string(65536, '*')) + "| end"},
    // Lengths need not be minimal (the RFC asks that of the sender only).
    {c(fin | text, "abc", 2), server, msg("text", "abc") + "| end"},
    {c(fin | text, "abcde", 8), server, msg("text", "abcde") + "| end"},
    {s(fin | binary, "", 8), client, msg("binary", "") + "| end"},
    // A client reads unmasked frames.
    {s(fin | text, "hi") + s(fin | binary, bytes256), client,
     msg("text", "hi") + msg("binary", bytes256) + "| end"},
    {s(fin | text, std::string(300, 'x')), client, msg("text", std::string(300, 'x')) + "| end"},
    // Autobahn 2.x: pings and pongs, empty, binary, 125 bytes.
    {c(fin | ping), server, msg("ping", "") + "| end"},
    {c(fin | ping, "Hello, world!"), server, msg("ping", "Hello, world!") + "| end"},
    {c(fin | ping, "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"s), server,
     msg("ping", "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"s) + "| end"},
    {c(fin | ping, std::string(125, '\xfe')), server,
     msg("ping", std::string(125, '\xfe')) + "| end"},
    {c(fin | pong, "unsolicited") + c(fin | text, "x"), server,
     msg("pong", "unsolicited") + msg("text", "x") + "| end"},
    {s(fin | ping, "p") + s(fin | pong), client, msg("ping", "p") + msg("pong", "") + "| end"},
    // Autobahn 5.x: fragmentation, with control frames between fragments.
    {c(text, "Hel") + c(fin | cont, "lo"), server, msg("text", "Hello", 2) + "| end"},
    {c(binary, "a") + c(cont, "b") + c(fin | cont, "c"), server, msg("binary", "abc", 3) + "| end"},
    {c(text, "fragment1") + c(fin | ping, "p") + c(cont, "fragment2") + c(fin | pong) +
         c(fin | cont, "fragment3"),
     server,
     msg("ping", "p") + msg("pong", "") + msg("text", "fragment1fragment2fragment3", 3) + "| end"},
    {c(text) + c(cont) + c(fin | cont), server, msg("text", "", 3) + "| end"},
    {s(text, "a") + s(fin | ping) + s(fin | cont, "b"), client,
     msg("ping", "") + msg("text", "ab", 2) + "| end"},
    // Autobahn 6.x: valid UTF-8, fragmented on and inside code points.
    {c(fin | text, kosme), server, msg("text", kosme) + "| end"},
    {c(text, kosme.substr(0, 3)) + c(cont, kosme.substr(3, 4)) + c(fin | cont, kosme.substr(7)),
     server, msg("text", kosme, 3) + "| end"},
    {c(text, "\xf4\x8f") + c(fin | cont, "\xbf\xbf"), server,
     msg("text", "\xf4\x8f\xbf\xbf", 2) + "| end"},
    {c(fin | text, "\xef\xbf\xbe\xef\xbf\xbf\xf0\x9f\xbf\xbe"), server,
     msg("text", "\xef\xbf\xbe\xef\xbf\xbf\xf0\x9f\xbf\xbe") + "| end"},
    // Binary messages are not UTF-8.
    {c(fin | binary, "\xff\xc0\xed\xa0\x80"), server,
     msg("binary", "\xff\xc0\xed\xa0\x80") + "| end"},
    // Autobahn 7.x: close frames, and nothing read after one.
    {c(fin | close), server, "close(1005,) | closed rest=0"},
    {c(fin | close, code(1000)), server, "close(1000,) | closed rest=0"},
    {c(fin | close, code(1000) + "Hello World!"), server,
     "close(1000,Hello World!) | closed rest=0"},
    {c(fin | close, code(1000) + std::string(123, '*')), server,
     "close(1000," + show(std::string(123, '*')) + ") | closed rest=0"},
    {c(fin | close, code(1001) + kosme), server, "close(1001," + show(kosme) + ") | closed rest=0"},
    {c(fin | close, code(1011)), server, "close(1011,) | closed rest=0"},
    {c(fin | close, code(1012)), server, "close(1012,) | closed rest=0"},
    {c(fin | close, code(1014)), server, "close(1014,) | closed rest=0"},
    {c(fin | close, code(3000)), server, "close(3000,) | closed rest=0"},
    {c(fin | close, code(4999)), server, "close(4999,) | closed rest=0"},
    {s(fin | close, code(1002) + "bye"), client, "close(1002,bye) | closed rest=0"},
    {c(fin | text, "Hello World!") + c(fin | close, code(1000)), server,
     msg("text", "Hello World!") + "close(1000,) | closed rest=0"},
    {c(fin | close, code(1000)) + c(fin | close), server, "close(1000,) | closed rest=6"},
    {c(fin | close, code(1000)) + c(fin | ping), server, "close(1000,) | closed rest=6"},
    {c(text, "fragment1") + c(fin | close, code(1000)) + c(fin | cont, "fragment2"), server,
     "close(1000,) | closed rest=15"},
    // The message limit: exactly max_message over fragments is fine.
    {c(text, "12345") + c(fin | cont, "67890"), limited(10),
     msg("text", "1234567890", 2) + "| end"},
    {c(fin | binary, "1234567890") + c(fin | binary, "1234567890"), limited(10),
     msg("binary", "1234567890") + msg("binary", "1234567890") + "| end"},
    // permessage-deflate: RSV1 on a message's first frame; its text is not UTF-8 checked.
    {c(fin | rsv1 | text, "\xff\x00\x01"s), deflate(), msg("text(z)", "\xff\x00\x01"s) + "| end"},
    {c(rsv1 | binary, "ab") + c(fin | ping) + c(fin | cont, "c"), deflate(),
     msg("ping", "") + msg("binary(z)", "abc", 2) + "| end"},
    {c(fin | text, "plain") + c(fin | rsv1 | text, "\xc0"), deflate(),
     msg("text", "plain") + msg("text(z)", "\xc0") + "| end"},
    {s(fin | rsv1 | binary, "z"), deflate(role::client), msg("binary(z)", "z") + "| end"},
    // Streams that stop early: the header and control frames stay in the buffer.
    {c(fin | text, "Hello").substr(0, 5), server, "| incomplete rest=5"},
    {c(fin | text, std::string(300, 'a')).substr(0, 100), server, "| incomplete rest=0 open"},
    {c(fin | ping, "Hello").substr(0, 10), server, "| incomplete rest=10"},
    {c(text, "a") + c(fin | cont, "b").substr(0, 3), server, "| incomplete rest=3 open"},
};

TEST(websocket_frame_parser, reads_each_valid_vector_alike_under_every_split) {
  for (const valid_vector& v : valid_vectors) {
    SCOPED_TRACE(show(v.wire));
    EXPECT_EQ(grind(v.wire, v.cfg), v.log);
  }
}

// --- hostile ----------------------------------------------------------------------------------

struct hostile_vector {
  std::string wire;
  config cfg;
  std::string before;  // what is seen before the error
  errc error;
  ws::close_code close;
};

constexpr auto protocol = ws::close_code::protocol_error;
constexpr auto invalid_data = ws::close_code::invalid_payload;
constexpr auto too_big = ws::close_code::message_too_big;

// A header announcing a 64-bit length, with no payload after it.
std::string long_header(std::uint8_t b0, std::uint64_t n, bool masked = true) {
  std::string h{static_cast<char>(b0), static_cast<char>(masked ? 0xff : 0x7f)};
  for (int i = 7; i >= 0; --i)
    h += static_cast<char>(n >> (8 * i));
  if (masked) h += "\x01\x02\x03\x04";
  return h;
}

const hostile_vector hostile_vectors[] = {
    // Autobahn 3.x: reserved bits without an extension.
    {c(fin | rsv1 | text, "Hello"), server, "", errc::reserved_bits, protocol},
    {c(fin | rsv2 | text, "Hello"), server, "", errc::reserved_bits, protocol},
    {c(fin | rsv3 | binary, "x"), server, "", errc::reserved_bits, protocol},
    {c(fin | text, "Hello") + c(fin | rsv2 | rsv1 | text, "x") + c(fin | ping), server,
     msg("text", "Hello"), errc::reserved_bits, protocol},
    {c(fin | rsv3 | rsv1 | ping), server, "", errc::reserved_bits, protocol},
    {c(fin | rsv2 | close), server, "", errc::reserved_bits, protocol},
    // ... and RSV1 with permessage-deflate where it may not be.
    {c(fin | rsv1 | ping), deflate(), "", errc::reserved_bits, protocol},
    {c(rsv1 | text, "a") + c(fin | rsv1 | cont, "b"), deflate(), "", errc::reserved_bits, protocol},
    {c(fin | rsv2 | text, "a"), deflate(), "", errc::reserved_bits, protocol},
    // Autobahn 4.x: reserved opcodes, data and control.
    {c(fin | 3), server, "", errc::bad_opcode, protocol},
    {c(fin | 4, "reserved"), server, "", errc::bad_opcode, protocol},
    {c(fin | text, "Hello") + c(fin | 5, "x") + c(fin | ping), server, msg("text", "Hello"),
     errc::bad_opcode, protocol},
    {c(fin | 6), server, "", errc::bad_opcode, protocol},
    {c(fin | 7), server, "", errc::bad_opcode, protocol},
    {c(fin | 0xb), server, "", errc::bad_opcode, protocol},
    {c(fin | 0xc, "x"), server, "", errc::bad_opcode, protocol},
    {c(fin | 0xf), server, "", errc::bad_opcode, protocol},
    {s(fin | 0xd), client, "", errc::bad_opcode, protocol},
    // Masking by role.
    {s(fin | text, "Hello"), server, "", errc::unmasked_frame, protocol},
    {s(fin | ping), server, "", errc::unmasked_frame, protocol},
    {c(fin | text, "x") + s(fin | text, "y"), server, msg("text", "x"), errc::unmasked_frame,
     protocol},
    {c(fin | text, "Hello"), client, "", errc::masked_frame, protocol},
    {c(fin | close, code(1000)), client, "", errc::masked_frame, protocol},
    // Autobahn 2.5, 7.3.6: control frames longer than 125 bytes (and 126/127 lengths).
    {c(fin | ping, std::string(126, 'p')), server, "", errc::control_frame_too_long, protocol},
    {c(fin | close, code(1000) + std::string(124, '*')), server, "", errc::control_frame_too_long,
     protocol},
    {c(fin | pong, "x", 2), server, "", errc::control_frame_too_long, protocol},
    {s(fin | ping, "x", 8), client, "", errc::control_frame_too_long, protocol},
    // Autobahn 5.1-5.2: fragmented control frames.
    {c(ping, "fragment1") + c(fin | cont, "fragment2"), server, "", errc::fragmented_control_frame,
     protocol},
    {c(pong, "fragment1"), server, "", errc::fragmented_control_frame, protocol},
    {c(close, code(1000)), server, "", errc::fragmented_control_frame, protocol},
    // Autobahn 5.9-5.18: continuation without a message, a new message inside one.
    {c(fin | cont, "non-continuation payload") + c(fin | text, "Hello, world!"), server, "",
     errc::unexpected_continuation, protocol},
    {c(cont, "fragment1") + c(fin | cont, "fragment2"), server, "", errc::unexpected_continuation,
     protocol},
    {c(fin | text, "a") + c(fin | cont, "b"), server, msg("text", "a"),
     errc::unexpected_continuation, protocol},
    {c(text, "fragment1") + c(fin | text, "fragment2"), server, "", errc::message_in_progress,
     protocol},
    {c(text, "fragment1") + c(fin | ping) + c(binary, "fragment2"), server, msg("ping", ""),
     errc::message_in_progress, protocol},
    {s(binary, "a") + s(fin | binary, "b"), client, "", errc::message_in_progress, protocol},
    // A 64-bit length with its top bit set.
    {long_header(fin | binary, 1ull << 63), server, "", errc::bad_length, protocol},
    {long_header(fin | binary, ~0ull, false), client, "", errc::bad_length, protocol},
    // Autobahn 6.x: invalid UTF-8, failed at the first bad byte even mid-frame (6.4.x).
    {c(fin | text, "\xff"), server, "", errc::invalid_utf8, invalid_data},
    {c(fin | text, kosme + "\xed\xa0\x80" + "edited"), server, "", errc::invalid_utf8,
     invalid_data},
    {c(fin | text, "\xce"), server, "", errc::invalid_utf8, invalid_data},
    {c(text, "\xce") + c(fin | cont), server, "", errc::invalid_utf8, invalid_data},
    {c(text, kosme) + c(fin | cont, "\xf4\x90\x80\x80"), server, "", errc::invalid_utf8,
     invalid_data},
    {c(text, "\xf4\x90\x80\x80") + c(fin | cont, "ok"), server, "", errc::invalid_utf8,
     invalid_data},
    {c(fin | text, "ok") + c(fin | text, "\xc0\xaf"), server, msg("text", "ok"), errc::invalid_utf8,
     invalid_data},
    // 6.4.3-like: a frame of 30 announced bytes whose 13th byte is bad, and no more of it.
    {c(fin | text, kosme + "\xf4\x90\x80\x80" + std::string(15, 'x')).substr(0, 19), server, "",
     errc::invalid_utf8, invalid_data},
    {s(fin | text, "\xed\xbf\xbf"), client, "", errc::invalid_utf8, invalid_data},
    // The message limit, failed when a header announces too much.
    {c(fin | text, "12345678901"), limited(10), "", errc::message_too_big, too_big},
    {c(binary, "123456") + c(fin | cont, "789012"), limited(10), "", errc::message_too_big,
     too_big},
    {long_header(fin | binary, 1ull << 40), server, "", errc::message_too_big, too_big},
    {long_header(binary, 16 * 1024 * 1024 + 1), server, "", errc::message_too_big, too_big},
    {s(binary, "12345") + long_header(fin | cont, ~0ull >> 1, false), limited(10, role::client), "",
     errc::message_too_big, too_big},
    // Autobahn 7.x: close payloads.
    {c(fin | close, "a"), server, "", errc::bad_close_payload, protocol},
    {c(fin | close, code(0)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(999)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1004)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1005)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1006)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1015)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1016)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1100)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(2000)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(2999)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(5000)), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(65535) + "x"), server, "", errc::invalid_close_code, protocol},
    {c(fin | close, code(1000) + kosme + "\xed\xa0\x80" + "edited"), server, "",
     errc::invalid_close_reason, invalid_data},
    {s(fin | close, code(1000) + "\xc3"), client, "", errc::invalid_close_reason, invalid_data},
};

TEST(websocket_frame_parser, rejects_each_hostile_vector_alike_under_every_split) {
  for (const hostile_vector& v : hostile_vectors) {
    SCOPED_TRACE(show(v.wire));
    const std::string error = ws::make_error_code(v.error).message();
    EXPECT_EQ(grind(v.wire, v.cfg), v.before + "| error: " + error);
    EXPECT_EQ(ws::close_code_of(v.error), v.close);
  }
}

// --- the streaming contract, step by step -----------------------------------------------------

std::span<char> span(std::string& s) {
  return {s.data(), s.size()};
}

TEST(websocket_frame_parser, leaves_a_split_header_unconsumed_and_delivers_payload_as_it_comes) {
  ws::frame_parser p(role::server);
  const std::string wire = c(fin | binary, std::string(300, 'z'));  // 2 + 2 + 4 byte header
  for (std::size_t n = 0; n < 9; ++n) {
    std::string part = wire.substr(0, n);
    const ws::frame_event e = p.next(span(part));
    EXPECT_EQ(e.status, frame_status::incomplete) << n;
    EXPECT_EQ(e.consumed, 0u);
    EXPECT_EQ(part, wire.substr(0, n));
  }
  std::string buf = wire.substr(0, 108);
  ws::frame_event e = p.next(span(buf));
  ASSERT_EQ(e.status, frame_status::event);
  EXPECT_EQ(e.consumed, 108u);
  EXPECT_EQ(e.payload, std::string(100, 'z'));
  EXPECT_TRUE(e.message_begin);
  EXPECT_FALSE(e.frame_end);
  EXPECT_TRUE(p.in_message());
  buf = wire.substr(108);
  e = p.next(span(buf));
  ASSERT_EQ(e.status, frame_status::event);
  EXPECT_EQ(e.payload, std::string(200, 'z'));
  EXPECT_FALSE(e.message_begin);
  EXPECT_TRUE(e.frame_end && e.message_end);
  EXPECT_FALSE(p.in_message());
}

TEST(websocket_frame_parser, streams_a_1_gib_frame_without_buffering_it) {
  ws::frame_limits limits;
  limits.max_message = 1ull << 30;
  ws::frame_parser p(role::client, limits);
  std::string buf = long_header(fin | binary, 1ull << 30, false);
  buf += std::string(64 * 1024 - buf.size(), 'a');
  std::uint64_t total = 0;
  int events = 0;
  for (;;) {
    const ws::frame_event e = p.next(span(buf));
    ASSERT_EQ(e.status, frame_status::event);
    ++events;
    total += e.payload.size();
    if (e.message_end) break;
    buf.assign(std::min<std::uint64_t>(64 * 1024, (1ull << 30) - total), 'a');
  }
  EXPECT_EQ(total, 1ull << 30);
  EXPECT_GT(events, 16000);  // one per 64 KiB read
}

TEST(websocket_frame_parser, keeps_reporting_the_first_error_and_reset_starts_over) {
  ws::frame_parser p(role::server);
  std::string bad = s(fin | text, "x");
  EXPECT_EQ(p.next(span(bad)).error, errc::unmasked_frame);
  std::string good = c(fin | text, "x");
  EXPECT_EQ(p.next(span(good)).error, errc::unmasked_frame);
  p.reset();
  EXPECT_EQ(p.next(span(good)).status, frame_status::event);
}

TEST(websocket_frame_parser, reports_closed_after_a_close_frame) {
  ws::frame_parser p(role::server);
  std::string buf = c(fin | close, code(1001) + "bye") + c(fin | ping);
  const ws::frame_event e = p.next(span(buf));
  ASSERT_EQ(e.status, frame_status::event);
  EXPECT_EQ(e.op, opcode::close);
  EXPECT_EQ(e.close_code, 1001);
  EXPECT_EQ(e.close_reason, "bye");
  EXPECT_EQ(e.payload, code(1001) + "bye");
  EXPECT_TRUE(p.closed());
  std::string rest = buf.substr(e.consumed);
  EXPECT_EQ(p.next(span(rest)).status, frame_status::closed);
}

}  // namespace
