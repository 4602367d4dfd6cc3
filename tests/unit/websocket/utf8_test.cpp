// Unit: the streaming UTF-8 validator. Markus Kuhn's UTF-8 decoder stress test (the source of
// Autobahn 6.x) as a table: each vector is fed whole, split at every byte into two pieces, in
// random chunks and one byte at a time, and must give the same verdict; fed one byte at a
// time, the first failing feed() must be at the first byte that no valid sequence continues.
#include "nbio/websocket/utf8.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ws = nbio::websocket;
using namespace std::string_literals;

constexpr int valid = -1;  // fails_at: the vector is valid UTF-8

struct vector {
  std::string bytes;
  int fails_at;  // the index of the byte whose feed() fails; size(): complete() fails at the end
};

const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // "κόσμε"

const vector vectors[] = {
    // Valid.
    {"", valid},
    {"a", valid},
    {"hello, world", valid},
    {kosme, valid},
    {"\x00"s, valid},             // 2.1.1: first 1-byte sequence (U+0000)
    {"\xc2\x80", valid},          // 2.1.2: U+0080
    {"\xe0\xa0\x80", valid},      // 2.1.3: U+0800
    {"\xf0\x90\x80\x80", valid},  // 2.1.4: U+10000
    {"\x7f", valid},              // 2.2.1: U+007F
    {"\xdf\xbf", valid},          // 2.2.2: U+07FF
    {"\xef\xbf\xbf", valid},      // 2.2.3: U+FFFF (a non-character, still UTF-8)
    {"\xf4\x8f\xbf\xbf", valid},  // U+10FFFF, the last code point
    {"\xed\x9f\xbf", valid},      // 2.3.1: U+D7FF, just below the surrogates
    {"\xee\x80\x80", valid},      // 2.3.2: U+E000, just above them
    {"\xef\xbf\xbd", valid},      // 2.3.3: U+FFFD
    {"\xef\xbf\xbe", valid},      // 5.3: U+FFFE
    {"\xf0\x9f\xbf\xbe", valid},  // U+1FFFE
    {std::string(100, 'x') + "\xc3\xa9" + std::string(9, 'y'), valid},  // the ASCII fast path
    // Above U+10FFFF and the 5/6-byte forms.
    {"\xf4\x90\x80\x80", 1},          // U+110000
    {"\xf7\xbf\xbf\xbf", 0},          // 2.2.4: U+1FFFFF
    {"\xf8\x88\x80\x80\x80", 0},      // 2.1.5: 5 bytes
    {"\xfc\x84\x80\x80\x80\x80", 0},  // 2.1.6: 6 bytes
    {"\xfb\xbf\xbf\xbf\xbf", 0},      // 2.2.5
    {"\xfd\xbf\xbf\xbf\xbf\xbf", 0},  // 2.2.6
    // 3.1: unexpected continuation bytes.
    {"\x80", 0},
    {"\xbf", 0},
    {"\x80\xbf", 0},
    {"a\x80\xbf\x80", 1},
    // 3.2: lonely start bytes followed by a space.
    {"\xc0\x20", 0},
    {"\xc2\x20", 1},
    {"\xe0\x20", 1},
    {"\xf0\x20", 1},
    {"\xf8\x20", 0},
    {"\xfc\x20", 0},
    // 3.3: sequences with the last continuation byte missing (at the end of the input).
    {"\xc2", 1},
    {"\xe0\xa0", 2},
    {"\xf0\x90\x80", 3},
    {"\xdf", 1},
    {"\xef\xbf", 2},
    {"\xf4\x8f\xbf", 3},
    {"\xce\xba\xe1\xbd", 4},
    // ... and followed by something else.
    {"\xe0\xa0"
     "a",
     2},
    {"\xf0\x90\x80\xce\xba", 3},
    // 3.4: concatenation of incomplete sequences.
    {"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80", 0},
    {"\xdf\xef\xbf\xf7\xbf\xbf", 1},
    // 3.5: impossible bytes.
    {"\xfe", 0},
    {"\xff", 0},
    {"\xfe\xfe\xff\xff", 0},
    // 4.1-4.3: overlong forms (of '/', of the largest overlongs, of NUL).
    {"\xc0\xaf", 0},
    {"\xe0\x80\xaf", 1},
    {"\xf0\x80\x80\xaf", 1},
    {"\xf8\x80\x80\x80\xaf", 0},
    {"\xfc\x80\x80\x80\x80\xaf", 0},
    {"\xc1\xbf", 0},
    {"\xe0\x9f\xbf", 1},
    {"\xf0\x8f\xbf\xbf", 1},
    {"\xc0\x80", 0},
    {"\xe0\x80\x80", 1},
    {"\xf0\x80\x80\x80", 1},
    // 5.1-5.2: UTF-16 surrogates, single and paired.
    {"\xed\xa0\x80", 1},  // U+D800
    {"\xed\xad\xbf", 1},  // U+DB7F
    {"\xed\xae\x80", 1},  // U+DB80
    {"\xed\xaf\xbf", 1},  // U+DBFF
    {"\xed\xb0\x80", 1},  // U+DC00
    {"\xed\xbe\x80", 1},  // U+DF80
    {"\xed\xbf\xbf", 1},  // U+DFFF
    {"\xed\xa0\x80\xed\xb0\x80", 1},
    {"\xed\xaf\xbf\xed\xbf\xbf", 1},
    // Autobahn 6.3.1 and 7.5.1: "κόσμε" then a surrogate then "edited".
    {kosme + "\xed\xa0\x80" + "edited", 12},
    // Fail fast: an invalid byte after long valid runs (8-byte path, then the tail).
    {std::string(100, 'a') + "\xff", 100},
    {std::string(16, 'a') + "\xc3\xa9" + std::string(16, 'b') + "\x80" + "cc", 34},
};

// Every way to cut n bytes: whole, each two-piece split, random chunks, one byte a piece.
std::vector<std::vector<std::size_t>> splits(std::size_t n) {
  std::vector<std::vector<std::size_t>> all{{}};
  for (std::size_t i = 1; i < n; ++i)
    all.push_back({i});
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

bool validate(std::string_view s, const std::vector<std::size_t>& cuts) {
  ws::utf8_validator v;
  std::size_t from = 0;
  bool ok = true;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : s.size();
    ok = v.feed(s.substr(from, to - from)) && ok;  // feeding on after a failure must fail too
    from = to;
  }
  EXPECT_EQ(v.failed(), !ok);
  return ok && v.complete();
}

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    static const char digits[] = "0123456789abcdef";
    out += digits[c >> 4];
    out += digits[c & 15];
    out += ' ';
  }
  return out;
}

TEST(websocket_utf8, each_vector_gives_one_verdict_under_every_split) {
  for (const vector& v : vectors) {
    SCOPED_TRACE(hex(v.bytes));
    const bool want = v.fails_at == valid;
    EXPECT_EQ(ws::valid_utf8(v.bytes), want);
    for (const auto& cuts : splits(v.bytes.size()))
      ASSERT_EQ(validate(v.bytes, cuts), want) << cuts.size() << " cuts";
  }
}

TEST(websocket_utf8, fails_at_the_first_byte_no_valid_sequence_continues) {
  for (const vector& v : vectors) {
    SCOPED_TRACE(hex(v.bytes));
    ws::utf8_validator u;
    int failed_at = valid;
    for (std::size_t i = 0; i < v.bytes.size() && failed_at == valid; ++i)
      if (!u.feed(v.bytes.substr(i, 1))) failed_at = static_cast<int>(i);
    if (failed_at == valid && !u.complete()) failed_at = static_cast<int>(v.bytes.size());
    EXPECT_EQ(failed_at, v.fails_at);
  }
}

TEST(websocket_utf8, every_code_point_encodes_to_valid_utf8_and_surrogates_do_not) {
  for (std::uint32_t cp = 0; cp <= 0x10ffff; cp += (cp < 0x20000 ? 1 : 97)) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | cp >> 6);
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | cp >> 12);
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | cp >> 18);
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    ASSERT_EQ(ws::valid_utf8(s), !surrogate) << std::hex << cp;
  }
}

TEST(websocket_utf8, reset_clears_a_failure_and_an_open_code_point) {
  ws::utf8_validator v;
  EXPECT_FALSE(v.feed("\xff"));
  EXPECT_FALSE(v.feed("a"));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.feed("\xce"));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("ok"));
}

}  // namespace
