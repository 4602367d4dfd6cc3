// permessage-deflate: the negotiation both ways (tables of offers and answers, hostile ones
// included) and the compressor and decompressor (round trips, context takeover, pieces split
// at every byte, a zip bomb, data that is not deflate).
#include "nbio/websocket/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "nbio/websocket/error.hpp"

namespace ws = nbio::websocket;

namespace {

ws::deflate_options on(ws::deflate_memory m = ws::deflate_memory::shared) {
  ws::deflate_options o;
  o.enabled = true;
  o.memory = m;
  return o;
}

struct offer_row {
  const char* offers;
  bool keep_context;
  bool accepted;
  const char* response;  // when accepted
};

TEST(websocket_deflate_negotiate, server_answers_offers) {
  const offer_row rows[] = {
      // Shared memory: both directions without context takeover, whatever was offered.
      {"permessage-deflate", false, true,
       "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
      // Dedicated: the RFC's defaults stand.
      {"permessage-deflate", true, true, "permessage-deflate"},
      {"permessage-deflate; client_max_window_bits", true, true, "permessage-deflate"},
      {"permessage-deflate; client_no_context_takeover", true, true,
       "permessage-deflate; client_no_context_takeover"},
      {"permessage-deflate; server_no_context_takeover", true, true,
       "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=10", true, true,
       "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=\"12\"", true, true,
       "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; client_max_window_bits=9", true, true,
       "permessage-deflate; client_max_window_bits=9"},
      {"PerMessage-Deflate ;  Client_Max_Window_Bits = 11", true, true,
       "permessage-deflate; client_max_window_bits=11"},
      // The first acceptable offer wins; bad ones are skipped.
      {"x-webkit-deflate-frame, permessage-deflate", true, true, "permessage-deflate"},
      {"permessage-deflate; foo, permessage-deflate; server_no_context_takeover", true, true,
       "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=8, permessage-deflate", true, true,
       "permessage-deflate"},
      // Declined: zlib has no 256-byte window for our compressor, a value is required, values
      // outside 8-15 or with leading zeros, values on flags, unknown or repeated parameters.
      {"permessage-deflate; server_max_window_bits=8", true, false, ""},
      {"permessage-deflate; server_max_window_bits", true, false, ""},
      {"permessage-deflate; server_max_window_bits=16", true, false, ""},
      {"permessage-deflate; client_max_window_bits=7", true, false, ""},
      {"permessage-deflate; client_max_window_bits=010", true, false, ""},
      {"permessage-deflate; client_max_window_bits=abc", true, false, ""},
      {"permessage-deflate; client_max_window_bits=\"1 0\"", true, false, ""},
      {"permessage-deflate; client_max_window_bits=\"10", true, false, ""},
      {"permessage-deflate; server_no_context_takeover=1", true, false, ""},
      {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", true, false,
       ""},
      {"permessage-deflate; mux", true, false, ""},
      {"permessage-deflate;", true, false, ""},
      {"permessage-deflate; =", true, false, ""},
      {"permessage-deflate; server_max_window_bits=", true, false, ""},
      {"permessage-deflate \"x\"", true, false, ""},
      {"deflate", true, false, ""},
      {"", true, false, ""},
      {",,, ;;; ,", true, false, ""},
      {"\"permessage-deflate\"", true, false, ""},
  };
  for (const offer_row& r : rows) {
    SCOPED_TRACE(r.offers);
    ws::deflate_params p;
    std::string response;
    EXPECT_EQ(ws::negotiate_deflate(r.offers, on(), r.keep_context, p, response), r.accepted);
    if (r.accepted) {
      EXPECT_EQ(response, r.response);
    }
  }
}

TEST(websocket_deflate_negotiate, agreed_parameters_follow_the_answer) {
  ws::deflate_params p;
  std::string response;
  ws::deflate_options o = on();
  o.server_max_window_bits = 11;
  o.client_max_window_bits = 10;
  ASSERT_TRUE(
      ws::negotiate_deflate("permessage-deflate; server_max_window_bits=13; client_max_window_bits",
                            o, true, p, response));
  EXPECT_EQ(p.server_max_window_bits, 11);  // ours is smaller than the offer's
  EXPECT_EQ(p.client_max_window_bits, 10);
  EXPECT_EQ(response, "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10");
  EXPECT_FALSE(p.server_no_context_takeover);
  // A client that did not offer client_max_window_bits may use 15: nothing is asked of it.
  ASSERT_TRUE(ws::negotiate_deflate("permessage-deflate", o, true, p, response));
  EXPECT_EQ(p.client_max_window_bits, 15);
  EXPECT_EQ(p.server_max_window_bits, 11);  // our compressor may always use less
  EXPECT_EQ(response, "permessage-deflate");
}

TEST(websocket_deflate_negotiate, disabled_declines_everything) {
  ws::deflate_params p;
  std::string response;
  EXPECT_FALSE(ws::negotiate_deflate("permessage-deflate", {}, true, p, response));
  EXPECT_EQ(ws::deflate_offer({}), "");
}

TEST(websocket_deflate_negotiate, hostile_offers_never_crash) {
  std::mt19937 rng(7);
  const std::string alphabet = "permessage-deflat;=,\" \\\t_0123456789serverclientwindowbits";
  for (int i = 0; i < 20'000; ++i) {
    std::string s(rng() % 80, ' ');
    for (char& c : s)
      c = alphabet[rng() % alphabet.size()];
    ws::deflate_params p;
    std::string response;
    std::error_code ec;
    if (ws::negotiate_deflate(s, on(), (i & 1) != 0, p, response)) {
      EXPECT_GE(p.server_max_window_bits, 9);
      EXPECT_LE(p.client_max_window_bits, 15);
    }
    ws::accept_deflate(s, on(ws::deflate_memory::dedicated), p, ec);
  }
}

struct answer_row {
  const char* answer;
  ws::deflate_memory memory;
  bool accepted;
  bool error;
};

TEST(websocket_deflate_negotiate, client_checks_answers) {
  using m = ws::deflate_memory;
  EXPECT_EQ(ws::deflate_offer(on(m::shared)),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "client_max_window_bits");
  EXPECT_EQ(ws::deflate_offer(on(m::dedicated)), "permessage-deflate; client_max_window_bits");
  const answer_row rows[] = {
      {"", m::dedicated, false, false},  // declined: uncompressed
      {"permessage-deflate", m::dedicated, true, false},
      {"permessage-deflate; client_max_window_bits=9", m::dedicated, true, false},
      {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", m::shared,
       true, false},
      // Shared asked the server not to keep a context: an answer without it is refused.
      {"permessage-deflate; client_no_context_takeover", m::shared, false, true},
      // A smaller server window than offered: read with it (Python's websockets sends it
      // unasked, against RFC 7692 7.1.2.1; harmless to us).
      {"permessage-deflate; server_max_window_bits=10", m::dedicated, true, false},
      // Parameters we did not offer, or cannot honour, or malformed; other extensions.
      {"permessage-deflate; server_max_window_bits", m::dedicated, false, true},
      {"permessage-deflate; client_max_window_bits=8", m::dedicated, false, true},
      {"permessage-deflate; client_max_window_bits", m::dedicated, false, true},
      {"permessage-deflate; client_max_window_bits=16", m::dedicated, false, true},
      {"permessage-deflate; server_no_context_takeover=x", m::dedicated, false, true},
      {"permessage-deflate; foo", m::dedicated, false, true},
      {"permessage-deflate, permessage-deflate", m::dedicated, false, true},
      {"x-webkit-deflate-frame", m::dedicated, false, true},
      {"permessage-deflate; ;", m::dedicated, false, true},
  };
  for (const answer_row& r : rows) {
    SCOPED_TRACE(r.answer);
    ws::deflate_params p;
    std::error_code ec;
    EXPECT_EQ(ws::accept_deflate(r.answer, on(r.memory), p, ec), r.accepted);
    EXPECT_EQ(static_cast<bool>(ec), r.error) << ec.message();
    if (r.error) {
      EXPECT_EQ(ec, ws::errc::handshake_extension);
    }
  }
  ws::deflate_params p;
  std::error_code ec;
  ASSERT_TRUE(
      ws::accept_deflate("permessage-deflate; client_max_window_bits=10", on(m::dedicated), p, ec));
  EXPECT_EQ(p.client_max_window_bits, 10);
  EXPECT_FALSE(p.client_no_context_takeover);
  ws::deflate_options asks = on(m::dedicated);
  asks.server_max_window_bits = 12;
  EXPECT_EQ(ws::deflate_offer(asks),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits");
  ASSERT_TRUE(ws::accept_deflate("permessage-deflate; server_max_window_bits=10", asks, p, ec));
  EXPECT_EQ(p.server_max_window_bits, 10);
  EXPECT_FALSE(ws::accept_deflate("permessage-deflate; server_max_window_bits=13", asks, p, ec));
}

// --- the streams ---

std::string text(std::size_t n, unsigned seed) {
  static const char* words[] = {"alpha ",      "beta ",  "gamma ", "{\"id\":", "42, ",
                                "\"price\": ", "1.0841", "}\n",    "delta "};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n)
    s += words[rng() % 9];
  s.resize(n);
  return s;
}

std::string inflate_all(ws::inflater& in, std::string_view payload, std::uint64_t max = 1u << 30) {
  std::string out;
  EXPECT_FALSE(in.inflate(payload, true, out, max));
  return out;
}

TEST(websocket_deflate_stream, round_trips_with_and_without_context) {
  for (const bool keep : {false, true}) {
    for (const int bits : {9, 12, 15}) {
      ws::deflater d(bits, keep);
      ws::inflater in(bits);
      std::string z;
      for (const std::size_t n : {0u, 1u, 100u, 5000u, 200000u}) {
        const std::string m = text(n, static_cast<unsigned>(n));
        ASSERT_TRUE(d.compress(m, z));
        if (n >= 5000) {
          EXPECT_LT(z.size(), m.size() / 2);
        }
        EXPECT_EQ(inflate_all(in, z), m) << keep << " " << bits << " " << n;
        if (!keep) in.reset();
      }
    }
  }
}

TEST(websocket_deflate_stream, an_empty_message_after_another_inflates_with_context) {
  // zlib gives no bytes for a second flush in a row: the payload must still inflate (found by
  // Chromium and Python's websockets against a dedicated compressor).
  ws::deflater d(15, true);
  ws::inflater in(15);
  std::string z;
  for (const char* m : {"hello", "", "", "again", ""}) {
    ASSERT_TRUE(d.compress(m, z));
    EXPECT_FALSE(z.empty());
    EXPECT_EQ(inflate_all(in, z), m);
  }
}

TEST(websocket_deflate_stream, context_takeover_shrinks_repeats) {
  ws::deflater keep(15, true, 6), reset(15, false, 6);
  const std::string m = text(2000, 1);
  std::string a, b;
  ASSERT_TRUE(keep.compress(m, a));
  ASSERT_TRUE(keep.compress(m, b));  // the second refers to the first
  EXPECT_LT(b.size(), a.size() / 2);
  ws::inflater in(15);
  EXPECT_EQ(inflate_all(in, a), m);
  EXPECT_EQ(inflate_all(in, b), m);
  // Without the context the second cannot be read.
  ws::inflater fresh(15);
  std::string out;
  EXPECT_TRUE(fresh.inflate(b, true, out, 1u << 20));
  ASSERT_TRUE(reset.compress(m, a));
  ASSERT_TRUE(reset.compress(m, b));
  EXPECT_EQ(a, b);
}

TEST(websocket_deflate_stream, pieces_split_at_every_byte) {
  ws::deflater d(15, false);
  const std::string m = text(3000, 9);
  std::string z;
  ASSERT_TRUE(d.compress(m, z));
  for (std::size_t cut = 0; cut <= z.size(); ++cut) {
    ws::inflater in(15);
    std::string out;
    ASSERT_FALSE(in.inflate(std::string_view(z).substr(0, cut), false, out, 1u << 20));
    ASSERT_FALSE(in.inflate(std::string_view(z).substr(cut), true, out, 1u << 20));
    ASSERT_EQ(out, m) << cut;
  }
}

TEST(websocket_deflate_stream, zip_bomb_stops_at_the_limit) {
  // 64 MiB of zeros deflate to ~64 KiB.
  ws::deflater d(15, false, 9);
  std::string z;
  ASSERT_TRUE(d.compress(std::string(64u << 20, '\0'), z));
  ASSERT_LT(z.size(), 128u * 1024);
  ws::inflater in(15);
  std::string out;
  const std::uint64_t max = 1u << 20;
  EXPECT_EQ(in.inflate(z, true, out, max), ws::errc::message_too_big);
  EXPECT_LE(out.size(), max + 1);
  EXPECT_LE(out.capacity(), 4 * max);
  // In pieces too.
  ws::inflater in2(15);
  out.clear();
  std::error_code ec;
  for (std::size_t at = 0; at < z.size() && !ec; at += 100)
    ec = in2.inflate(std::string_view(z).substr(at, 100), at + 100 >= z.size(), out, max);
  EXPECT_EQ(ec, ws::errc::message_too_big);
  EXPECT_LE(out.size(), max + 1);
  // Exactly at the limit is fine.
  ws::inflater in3(15);
  ASSERT_TRUE(d.compress(std::string(max, 'a'), z));
  out.clear();
  EXPECT_FALSE(in3.inflate(z, true, out, max));
  EXPECT_EQ(out.size(), max);
}

TEST(websocket_deflate_stream, hostile_payloads_are_errors) {
  const std::string rows[] = {
      std::string("\xff\xff\xff\xff", 4),      // reserved block type 11
      std::string("\x07\x00", 2),              // BTYPE 11 again, final
      std::string("\x00\x05\x00\x00\x00", 5),  // stored block whose NLEN is not ~LEN
  };
  for (const std::string& r : rows) {
    ws::inflater in(15);
    std::string out;
    EXPECT_EQ(in.inflate(r, true, out, 1u << 20), ws::errc::bad_compressed_data) << r.size();
  }
  // Random bytes: an error or some output, never more than the limit, never a crash.
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string r(rng() % 200, '\0');
    for (char& c : r)
      c = static_cast<char>(rng());
    ws::inflater in(9 + i % 7);
    std::string out;
    (void)in.inflate(r, true, out, 4096);
    EXPECT_LE(out.size(), 4097u);
  }
}

TEST(websocket_deflate_stream, a_final_block_ends_the_message) {
  // A sender that finishes its stream (BFINAL) and keeps the trailer: still one message.
  const std::string m = text(1000, 4);
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(2000, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(m.data()));
  z.avail_in = static_cast<uInt>(m.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.erase(out.size() - z.avail_out);  // erase: GCC 12 at -O1 misreads a shrinking resize
  deflateEnd(&z);
  ws::inflater in(15);
  EXPECT_EQ(inflate_all(in, out), m);
  EXPECT_EQ(inflate_all(in, out), m);  // and the next message starts a fresh stream
  // Bytes after the final block are not deflate data: ignored (RFC 7692 7.2.3.4's example has
  // a 00 there).
  std::string extra;
  EXPECT_FALSE(in.inflate(out + "junk", true, extra, 1u << 20));
  EXPECT_EQ(extra, m);
}

}  // namespace
