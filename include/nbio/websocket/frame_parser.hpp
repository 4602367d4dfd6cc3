// Public. The WebSocket frame reader (RFC 6455 5), sans-I/O: the caller's read buffer in, one
// event a call out, payload unmasked in place, no allocation, every string a view into the
// caller's buffer.
//
//   nbio::websocket::frame_parser p(role::server);   // frames from a client: masked
//   // buf: received bytes not consumed yet (a mutable span: payload is unmasked in place)
//   for (;;) {
//     const frame_event e = p.next(buf);
//     if (e.status == frame_status::error) { /* send close close_code_of(e.error), close */ }
//     if (e.status != frame_status::event) break;  // incomplete: keep buf, read more
//                                                  // closed: a close frame was received
//     if (e.kind == event_kind::data) { /* append e.payload to message e.op; e.message_end */ }
//     else if (e.op == opcode::ping) { /* answer pong with e.payload */ }
//     else if (e.op == opcode::close) { /* answer close (e.close_code), close after flush */ }
//     buf = buf.subspan(e.consumed);                // views in e stay valid while buf does
//   }
//   // move the unconsumed tail (at most 131 bytes, see below) to the buffer's front
//
// Data frames (text, binary, continuation) are delivered piecewise as their payload arrives:
// each event carries the bytes of the current frame that are in `data` (never more than one
// frame's), so a 1 GiB frame never has to be buffered. A frame header is parsed only when whole
// (2 to 14 bytes) and consumed with the first payload bytes: with fewer, next() returns
// incomplete with consumed 0 and the caller keeps the header bytes. An empty data frame is one
// event with an empty payload. Control frames (close, ping, pong: at most 125 bytes) are
// delivered whole only: an incomplete one is left unconsumed, so the caller keeps at most
// 2 + 4 + 125 = 131 bytes (127 for a client: server frames carry no mask key), never more. A
// control frame must use the 7-bit length: 126 or 127 there is control_frame_too_long.
//
// Checked, each failure an nbio::websocket::errc (close_code_of gives the code to send):
// reserved opcodes; RSV2/RSV3; RSV1 unless permessage-deflate was negotiated, and then only on
// the first frame of a text or binary message; masking per role; control frames with FIN and
// at most 125 bytes; fragmentation (a continuation needs an open message, a text or binary
// frame needs none; control frames may come between fragments); 64-bit lengths below 2^63;
// frame_limits::max_message over all fragments of a message, failed as soon as a header
// announces too much; text messages as UTF-8 across frames and pieces, failed at the first bad
// byte, and at the message's end when it ends inside a code point; close payloads: empty, or a
// code valid_close_code accepts and a UTF-8 reason (a 1-byte payload is an error). Lengths are
// not required to be minimally encoded (RFC 6455 5.2 asks it of the sender only).
//
// A text message with RSV1 set (compressed) is not UTF-8 checked here: its events say
// `compressed` and the caller validates the inflated bytes (utf8_validator). max_message then
// counts compressed bytes; the caller limits the inflated size.
//
// After an error every call returns the same error; after a close frame every call returns
// closed (RFC 6455 5.5.1: nothing after a close is processed). Thread affinity: none; a parser
// belongs to one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "nbio/websocket/error.hpp"
#include "nbio/websocket/frame.hpp"
#include "nbio/websocket/utf8.hpp"

namespace nbio::websocket {

struct frame_limits {
  // Payload bytes of one data message, all its fragments together (Autobahn 9.x sends up to
  // 16 MiB): beyond it, message_too_big (1009).
  std::uint64_t max_message = 16 * 1024 * 1024;
};

enum class frame_status : std::uint8_t {
  event,       // an event is reported: consume `consumed` bytes and call again
  incomplete,  // nothing to report until more bytes arrive (consumed is 0)
  error,       // the connection must fail: `error` says why
  closed,      // a close frame was received earlier: nothing more is read
};

enum class event_kind : std::uint8_t {
  none,     // status is not event
  data,     // a piece of a text or binary message (possibly empty)
  control,  // a whole close, ping or pong frame
};

struct frame_event {
  frame_status status = frame_status::incomplete;
  std::size_t consumed = 0;  // event: bytes of the input used (header and payload)
  event_kind kind = event_kind::none;
  // data: the message's opcode (text or binary, also for its continuation frames);
  // control: close, ping or pong.
  opcode op = opcode::continuation;
  std::string_view payload;       // unmasked; a view into the input
  bool message_begin = false;     // data: the first piece of a message
  bool frame_end = false;         // data: the last piece of its frame
  bool message_end = false;       // data: the last piece of the message (its final frame's end)
  bool compressed = false;        // data: the message has RSV1 (permessage-deflate)
  std::uint16_t close_code = 0;   // close: the code received; 1005 (no_status) when empty
  std::string_view close_reason;  // close: the reason (UTF-8), a view into the input
  std::error_code error;          // error: why (nbio::websocket::errc)
};

class frame_parser {
 public:
  // `permessage_deflate`: the extension was negotiated, so RSV1 may mark compressed messages.
  explicit frame_parser(role r, const frame_limits& limits = {},
                        bool permessage_deflate = false) noexcept
      : limits_(limits), role_(r), deflate_(permessage_deflate) {}

  // `data` holds every received byte not consumed yet, starting where the previous event
  // ended. Bytes of the reported payload are unmasked in place; bytes not consumed are left
  // untouched.
  frame_event next(std::span<char> data) noexcept;

  // A fragmented message is open (or a data frame's payload is still due).
  bool in_message() const noexcept { return in_message_ || in_frame_; }
  bool closed() const noexcept { return closed_; }
  // Forgets all state (a new connection with the same role and limits).
  void reset() noexcept { *this = frame_parser(role_, limits_, deflate_); }

 private:
  frame_event fail(errc e) noexcept;
  frame_event deliver(std::span<char> piece, std::size_t consumed, bool begin) noexcept;
  frame_event control(std::span<char> payload, opcode op, std::size_t consumed) noexcept;

  frame_limits limits_;
  std::uint64_t remaining_ = 0;      // payload bytes of the current data frame still due
  std::uint64_t message_bytes_ = 0;  // payload bytes of the open message, announced so far
  utf8_validator utf8_;
  std::uint32_t mask_key_ = 0;
  std::uint8_t mask_pos_ = 0;  // position of the next payload byte in the mask, 0-3
  std::uint8_t failed_ = 0;    // the errc after an error, 0 before
  role role_;
  opcode message_op_ = opcode::continuation;
  bool deflate_ = false;
  bool in_frame_ = false;    // a data frame's header was consumed, not all its payload
  bool frame_fin_ = false;   // the current data frame ends its message
  bool masked_ = false;      // the current data frame is masked
  bool in_message_ = false;  // a message was started and its final frame not finished
  bool compressed_ = false;  // the open message has RSV1
  bool closed_ = false;
};

}  // namespace nbio::websocket
