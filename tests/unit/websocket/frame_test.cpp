// Unit: the frame writer (header encoding, masking, close payloads), the error model, and the
// round trip writer -> parser for every opcode, length class and role.
#include "nbio/websocket/frame.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/websocket/error.hpp"
#include "nbio/websocket/frame_parser.hpp"
#include "nbio/websocket/utf8.hpp"

namespace {

namespace ws = nbio::websocket;
using ws::close_code;
using ws::errc;
using ws::opcode;
using namespace std::string_literals;

std::string header(opcode op, std::uint64_t length, bool fin, bool rsv1, const std::uint32_t* key) {
  std::array<char, ws::max_header_size> out{};
  const std::size_t n = ws::encode_header(out, op, length, fin, rsv1, key);
  return {out.data(), n};
}

std::uint32_t key_of(std::string_view four) {
  std::uint32_t k;
  std::memcpy(&k, four.data(), 4);
  return k;
}

struct header_vector {
  opcode op;
  std::uint64_t length;
  bool fin, rsv1, masked;
  std::string bytes;
};

const std::uint32_t rfc_key = key_of("\x37\xfa\x21\x3d");

const header_vector header_vectors[] = {
    {opcode::text, 5, true, false, false, "\x81\x05"},  // RFC 6455 5.7
    {opcode::text, 5, true, false, true, "\x81\x85\x37\xfa\x21\x3d"},
    {opcode::text, 3, false, false, false, "\x01\x03"},
    {opcode::continuation, 2, true, false, false, "\x80\x02"},
    {opcode::ping, 5, true, false, false, "\x89\x05"},
    {opcode::pong, 0, true, false, true, "\x8a\x80\x37\xfa\x21\x3d"},
    {opcode::close, 2, true, false, false, "\x88\x02"},
    {opcode::binary, 0, true, false, false, "\x82\x00"s},
    {opcode::binary, 125, true, false, false, "\x82\x7d"},
    {opcode::binary, 126, true, false, false, "\x82\x7e\x00\x7e"s},
    {opcode::binary, 256, true, false, false, "\x82\x7e\x01\x00"s},  // RFC 6455 5.7
    {opcode::binary, 65535, true, false, false, "\x82\x7e\xff\xff"},
    {opcode::binary, 65536, true, false, false, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s},
    {opcode::binary, 65536, true, false, true,
     "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d"s},
    {opcode::text, (1ull << 63) - 1, true, true, false, "\xc1\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"},
};

TEST(websocket_frame, encodes_headers_with_the_minimal_length) {
  for (const header_vector& v : header_vectors) {
    SCOPED_TRACE(v.length);
    EXPECT_EQ(header(v.op, v.length, v.fin, v.rsv1, v.masked ? &rfc_key : nullptr), v.bytes);
  }
}

TEST(websocket_frame, masks_the_rfc_example) {
  std::string hello = "Hello";
  ws::apply_mask(hello, rfc_key);
  EXPECT_EQ(hello, "\x7f\x9f\x4d\x51\x58");
  ws::apply_mask(hello, rfc_key);
  EXPECT_EQ(hello, "Hello");
}

TEST(websocket_frame, masks_in_pieces_at_any_offset_as_it_does_whole) {
  std::string plain;
  for (int i = 0; i < 100; ++i)
    plain += static_cast<char>(i * 7);
  const std::uint32_t key = key_of("\x01\x82\xc3\x74");
  std::string whole = plain;
  ws::apply_mask(whole, key);
  for (std::size_t i = 0; i < plain.size(); ++i)
    ASSERT_EQ(static_cast<char>(whole[i] ^ plain[i]), "\x01\x82\xc3\x74"[i % 4]) << i;
  for (std::size_t a = 0; a <= plain.size(); ++a) {
    for (std::size_t b = a; b <= plain.size(); b += 7) {
      std::string pieces = plain;
      std::span<char> all(pieces.data(), pieces.size());
      ws::apply_mask(all.first(a), key, 0);
      ws::apply_mask(all.subspan(a, b - a), key, a);
      ws::apply_mask(all.subspan(b), key, b);
      ASSERT_EQ(pieces, whole) << a << ' ' << b;
    }
  }
}

TEST(websocket_frame, builds_close_payloads_cut_on_a_code_point_boundary) {
  std::array<char, ws::max_control_payload> out{};
  auto payload = [&](close_code code, std::string_view reason) {
    return std::string(out.data(), ws::make_close_payload(out, code, reason));
  };
  EXPECT_EQ(payload(close_code::no_status, "ignored"), "");
  EXPECT_EQ(payload(close_code::normal, ""), "\x03\xe8");
  EXPECT_EQ(payload(close_code::going_away, "bye"),
            "\x03\xe9"
            "bye");
  EXPECT_EQ(payload(static_cast<close_code>(4000), "x"), "\x0f\xa0x");
  const std::string stars(200, '*');
  EXPECT_EQ(payload(close_code::normal, stars), "\x03\xe8" + stars.substr(0, 123));
  // 2-, 3- and 4-byte code points straddling byte 123 are dropped whole.
  for (const std::string& cp : {"\xc3\xa9"s, "\xe2\x82\xac"s, "\xf0\x9f\x98\x80"s}) {
    for (std::size_t lead = 120; lead <= 123; ++lead) {
      const std::string reason = std::string(lead, 'a') + cp + "tail";
      const std::string p = payload(close_code::normal, reason);
      ASSERT_LE(p.size(), 125u);
      EXPECT_TRUE(ws::valid_utf8(p.substr(2))) << lead << ' ' << cp.size();
      // The code point fits whole (and "tail" fills up to 123 bytes), or it is dropped.
      const std::size_t kept = lead + cp.size() <= 123 ? 123 : lead;
      EXPECT_EQ(p.size(), 2 + kept) << lead << ' ' << cp.size();
    }
  }
}

TEST(websocket_frame, valid_close_codes_follow_rfc_6455_and_the_iana_registry) {
  for (std::uint32_t code = 0; code <= 0xffff; ++code) {
    const bool want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                      (code >= 3000 && code <= 4999);
    ASSERT_EQ(ws::valid_close_code(static_cast<std::uint16_t>(code)), want) << code;
  }
}

TEST(websocket_frame, maps_each_error_to_its_close_code) {
  struct row {
    errc e;
    close_code code;
  };
  const row rows[] = {
      {errc::bad_opcode, close_code::protocol_error},
      {errc::reserved_bits, close_code::protocol_error},
      {errc::unmasked_frame, close_code::protocol_error},
      {errc::masked_frame, close_code::protocol_error},
      {errc::control_frame_too_long, close_code::protocol_error},
      {errc::fragmented_control_frame, close_code::protocol_error},
      {errc::unexpected_continuation, close_code::protocol_error},
      {errc::message_in_progress, close_code::protocol_error},
      {errc::bad_length, close_code::protocol_error},
      {errc::bad_close_payload, close_code::protocol_error},
      {errc::invalid_close_code, close_code::protocol_error},
      {errc::invalid_utf8, close_code::invalid_payload},
      {errc::invalid_close_reason, close_code::invalid_payload},
      {errc::message_too_big, close_code::message_too_big},
  };
  for (const row& r : rows) {
    const std::error_code ec = r.e;
    EXPECT_EQ(ec.category().name(), std::string("nbio.websocket"));
    EXPECT_NE(ec.message(), "unknown nbio.websocket error");
    EXPECT_EQ(ws::close_code_of(ec), r.code) << ec.message();
  }
  EXPECT_EQ(ws::close_code_of(std::make_error_code(std::errc::connection_reset)),
            close_code::internal_error);
}

// Writer -> parser: every opcode, the length classes, both roles, the payload masked in
// random pieces and read back in random reads.
TEST(websocket_frame, round_trips_through_the_parser) {
  std::mt19937 rng(7);
  const opcode ops[] = {opcode::text, opcode::binary, opcode::ping, opcode::pong, opcode::close};
  const std::size_t lengths[] = {0, 1, 2, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70001};
  for (const ws::role r : {ws::role::server, ws::role::client}) {
    for (const opcode op : ops) {
      for (const std::size_t len : lengths) {
        if (ws::is_control(op) && len > ws::max_control_payload) continue;
        std::string payload(len, 'a');
        for (char& ch : payload)
          ch = static_cast<char>('a' + rng() % 26);
        if (op == opcode::close && len == 1) continue;
        if (op == opcode::close && len >= 2) payload.replace(0, 2, "\x03\xe8");
        const std::uint32_t key = rng();
        const bool masked = r == ws::role::server;  // the client wrote it
        std::string wire = header(op, len, true, false, masked ? &key : nullptr);
        const std::size_t h = wire.size();
        wire += payload;
        if (masked) {
          std::span<char> body(wire.data() + h, len);
          for (std::size_t at = 0; at < len;) {
            const std::size_t n = std::min<std::size_t>(len - at, 1 + rng() % 300);
            ws::apply_mask(body.subspan(at, n), key, at);
            at += n;
          }
          if (len >= 4) {
            EXPECT_NE(wire.substr(h), payload);
          }
        }
        ws::frame_parser p(r);
        std::string buf, got;
        std::size_t fed = 0;
        bool done = false;
        while (!done) {
          const ws::frame_event e = p.next({buf.data(), buf.size()});
          ASSERT_NE(e.status, ws::frame_status::error) << e.error.message();
          if (e.status == ws::frame_status::incomplete) {
            ASSERT_LT(fed, wire.size());
            const std::size_t n = std::min<std::size_t>(wire.size() - fed, 1 + rng() % 5000);
            buf.append(wire, fed, n);
            fed += n;
            continue;
          }
          ASSERT_EQ(e.status, ws::frame_status::event);
          EXPECT_EQ(e.op, op);
          got.append(e.payload);
          done = e.kind == ws::event_kind::control || e.message_end;
          buf.erase(0, e.consumed);
        }
        EXPECT_EQ(got, payload) << int(op) << ' ' << len;
        EXPECT_TRUE(buf.empty());
        EXPECT_EQ(fed, wire.size());
      }
    }
  }
}

}  // namespace
