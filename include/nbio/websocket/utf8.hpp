// Public. A streaming UTF-8 validator (RFC 3629) for WebSocket text messages and close reasons.
//
//   nbio::websocket::utf8_validator v;
//   if (!v.feed(piece1) || !v.feed(piece2)) { /* invalid: fail with 1007 */ }
//   if (!v.complete()) { /* the message ended inside a code point: fail with 1007 */ }
//   v.reset();  // next message
//
// The state (how many continuation bytes are due, and the range the next one must fall in)
// is carried across pieces, so a code point may be split anywhere. feed() fails at the first
// byte that cannot continue any valid sequence, even in the middle of a message and of a code
// point (Autobahn 6.4.x "fail fast"): overlong forms (C0, C1, E0 80-9F, F0 80-8F), surrogates
// U+D800-DFFF (ED A0-BF), code points above U+10FFFF (F4 90-BF, F5-FF) and stray continuation
// bytes. Non-characters (U+FFFE, U+FFFF, ...) are valid UTF-8 and accepted. Once a feed() has
// failed, every later feed() fails until reset(). No allocation; runs of ASCII are checked
// 8 bytes at a time.
//
// Thread affinity: none; one validator belongs to one stream at a time.
#pragma once

#include <cstdint>
#include <string_view>

namespace nbio::websocket {

class utf8_validator {
 public:
  // Validates the next piece of the stream; false at the first invalid byte.
  bool feed(std::string_view piece) noexcept;
  // True when no code point is open: what has been fed is valid and ends on a boundary.
  bool complete() const noexcept { return pending_ == 0; }
  bool failed() const noexcept { return pending_ == failed_state; }
  void reset() noexcept { *this = utf8_validator(); }

 private:
  static constexpr std::uint8_t failed_state = 0xff;
  std::uint8_t pending_ = 0;  // continuation bytes still due; failed_state after an error
  std::uint8_t lo_ = 0x80;    // the range the next continuation byte must fall in
  std::uint8_t hi_ = 0xbf;
};

// Whether `s` as a whole is valid UTF-8.
bool valid_utf8(std::string_view s) noexcept;

}  // namespace nbio::websocket
