// Public. WebSocket framing (RFC 6455 5.2), sans-I/O: opcodes, the frame header, and the frame
// writer (header encoding, masking, close payloads). The reader is frame_parser.hpp.
//
//   std::array<char, 14> head;
//   const std::size_t n = encode_header(head, opcode::text, payload.size(), true, false, nullptr);
//   // server: write head[0..n) then the payload as is.
//   // client: pass &key (4 random bytes), write head[0..n), then the payload after
//   //         apply_mask(payload, key, 0); pieces of it may be masked separately with their
//   //         offset within the payload.
//
// A mask key is a std::uint32_t holding the key's 4 bytes in wire order (memcpy of the 4 bytes
// that follow the length on the wire), so the same value works on any byte order.
//
// Thread affinity: none (pure functions).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "nbio/websocket/error.hpp"

namespace nbio::websocket {

enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xa,
};

// Which side of the connection this endpoint is: a server receives masked frames and sends
// unmasked ones, a client the other way round (RFC 6455 5.1).
enum class role : std::uint8_t { server, client };

// close, ping and pong (opcodes 8-15): at most 125 payload bytes and never fragmented.
constexpr bool is_control(opcode op) noexcept {
  return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

// One frame's header as sent or received.
struct frame_header {
  bool fin = true;
  bool rsv1 = false;  // permessage-deflate: the message is compressed (first frame only)
  bool rsv2 = false;
  bool rsv3 = false;
  opcode op = opcode::text;
  bool masked = false;
  std::uint32_t mask_key = 0;  // wire order, see above; meaningful when masked
  std::uint64_t length = 0;    // payload bytes
};

// The largest header: 2 bytes, a 64-bit length and a mask key.
inline constexpr std::size_t max_header_size = 14;
// The largest control frame payload (RFC 6455 5.5), and the longest close reason after the
// 2-byte code.
inline constexpr std::size_t max_control_payload = 125;
inline constexpr std::size_t max_close_reason = 123;

// Writes the header of a frame carrying `length` payload bytes into `out` and returns its size
// (2 to 14). The length takes the minimal encoding (7 bits up to 125, 16 bits up to 65535, 64
// bits above). `mask_key` null: unmasked (a server's frames); otherwise the frame is masked
// with *mask_key (a client's frames: a fresh random key per frame) and the caller masks the
// payload with apply_mask. The caller keeps the rules the parser enforces: control frames
// with fin and at most 125 bytes, rsv1 only on the first frame of a compressed message, and
// length below 2^63.
std::size_t encode_header(std::span<char, max_header_size> out, opcode op, std::uint64_t length,
                          bool fin, bool rsv1, const std::uint32_t* mask_key) noexcept;

// XORs `data` with the mask `key` in place (masking and unmasking are the same). `offset` is
// the position of data[0] within the frame's payload, so a payload may be (un)masked in pieces
// as it arrives. Works 8 bytes at a time.
void apply_mask(std::span<char> data, std::uint32_t key, std::uint64_t offset = 0) noexcept;

// Builds a close frame's payload in `out` and returns its size: the code in network order and
// `reason`, cut to at most 123 bytes on a UTF-8 code point boundary (a reason that is not
// UTF-8 is cut at 123 bytes). close_code::no_status gives an empty payload (a close without a
// code); other codes are written as given (check valid_close_code before sending a code that
// came from elsewhere).
std::size_t make_close_payload(std::span<char, max_control_payload> out, close_code code,
                               std::string_view reason = {}) noexcept;

}  // namespace nbio::websocket
