// Private. The streaming UTF-8 validator.
//
// A byte-at-a-time state machine over the well-formed byte sequences of RFC 3629 table 3.7:
// the lead byte sets how many continuation bytes follow and the narrower range of the first
// one (which is what excludes overlongs, surrogates and values above U+10FFFF); later ones are
// 80-BF. ASCII runs, the common case for protocols on WebSocket, skip the machine 8 bytes at a
// time while no code point is open.
#include "nbio/websocket/utf8.hpp"

#include <cstring>

namespace nbio::websocket {

bool utf8_validator::feed(std::string_view piece) noexcept {
  if (pending_ == failed_state) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  const unsigned char* const end = p + piece.size();
  while (p != end) {
    if (pending_ == 0) {
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      const unsigned char c = *p++;
      if (c < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) {
        pending_ = 1;
      } else if (c >= 0xe0 && c <= 0xef) {
        pending_ = 2;
        if (c == 0xe0) lo_ = 0xa0;  // below: overlong
        if (c == 0xed) hi_ = 0x9f;  // above: surrogates
      } else if (c >= 0xf0 && c <= 0xf4) {
        pending_ = 3;
        if (c == 0xf0) lo_ = 0x90;  // below: overlong
        if (c == 0xf4) hi_ = 0x8f;  // above: past U+10FFFF
      } else {
        pending_ = failed_state;  // 80-BF stray, C0/C1 overlong, F5-FF out of range
        return false;
      }
      continue;
    }
    const unsigned char c = *p++;
    if (c < lo_ || c > hi_) {
      pending_ = failed_state;
      return false;
    }
    lo_ = 0x80;
    hi_ = 0xbf;
    --pending_;
  }
  return true;
}

bool valid_utf8(std::string_view s) noexcept {
  utf8_validator v;
  return v.feed(s) && v.complete();
}

}  // namespace nbio::websocket
