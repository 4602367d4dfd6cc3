// Private. The frame reader.
//
// Two states: between frames (parse a header, which is only committed once it is whole and,
// for a data frame, at least one payload byte or the frame's end is there) and inside a data
// frame's payload (hand out what has arrived). Every check a header allows runs as soon as the
// bytes it needs are there and before anything is committed, so a split never changes a
// verdict, only how early it is given.
#include "nbio/websocket/frame_parser.hpp"

#include <algorithm>
#include <cstring>

namespace nbio::websocket {

// Per-connection state (STYLE.md principle 4): the parser lives in every WebSocket connection.
static_assert(sizeof(frame_parser) <= 48);

namespace {

bool reserved_opcode(std::uint8_t op) noexcept {
  return (op >= 0x3 && op <= 0x7) || op >= 0xb;
}

std::uint64_t read_be(const char* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

frame_event frame_parser::fail(errc e) noexcept {
  failed_ = static_cast<std::uint8_t>(e);
  frame_event ev;
  ev.status = frame_status::error;
  ev.error = make_error_code(e);
  return ev;
}

frame_event frame_parser::next(std::span<char> data) noexcept {
  if (failed_ != 0) return fail(static_cast<errc>(failed_));
  if (closed_) {
    frame_event ev;
    ev.status = frame_status::closed;
    return ev;
  }
  if (in_frame_) {
    if (data.empty()) return {};
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size()));
    return deliver(data.first(n), n, false);
  }
  if (data.size() < 2) return {};

  // The first two bytes: what can be judged before the length and the key.
  const auto b0 = static_cast<unsigned char>(data[0]);
  const auto b1 = static_cast<unsigned char>(data[1]);
  const bool fin = (b0 & 0x80) != 0;
  const bool rsv1 = (b0 & 0x40) != 0;
  const std::uint8_t raw_op = b0 & 0x0f;
  const bool masked = (b1 & 0x80) != 0;
  const std::uint8_t len7 = b1 & 0x7f;
  if ((b0 & 0x30) != 0) return fail(errc::reserved_bits);
  if (reserved_opcode(raw_op)) return fail(errc::bad_opcode);
  const auto op = static_cast<opcode>(raw_op);
  const bool ctl = is_control(op);
  // RSV1 is permessage-deflate's "compressed" bit: first frame of a data message only (RFC
  // 7692 6).
  if (rsv1 && (!deflate_ || ctl || op == opcode::continuation)) return fail(errc::reserved_bits);
  if (ctl && !fin) return fail(errc::fragmented_control_frame);
  if (ctl && len7 > max_control_payload) return fail(errc::control_frame_too_long);
  if (role_ == role::server && !masked) return fail(errc::unmasked_frame);
  if (role_ == role::client && masked) return fail(errc::masked_frame);
  if (op == opcode::continuation && !in_message_) return fail(errc::unexpected_continuation);
  if ((op == opcode::text || op == opcode::binary) && in_message_)
    return fail(errc::message_in_progress);

  // The extended length and the mask key.
  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  const std::size_t header = 2 + ext + (masked ? 4 : 0);
  if (data.size() < header) return {};
  std::uint64_t length = len7;
  if (ext != 0) length = read_be(data.data() + 2, static_cast<int>(ext));
  if (ext == 8 && (length >> 63) != 0) return fail(errc::bad_length);
  std::uint32_t key = 0;
  if (masked) std::memcpy(&key, data.data() + 2 + ext, 4);

  if (ctl) {
    if (data.size() - header < length) return {};  // delivered whole only
    const std::span<char> payload = data.subspan(header, static_cast<std::size_t>(length));
    if (masked) apply_mask(payload, key, 0);
    return control(payload, op, header + payload.size());
  }

  const std::uint64_t before = op == opcode::continuation ? message_bytes_ : 0;
  if (length > limits_.max_message || before > limits_.max_message - length)
    return fail(errc::message_too_big);
  if (length > 0 && data.size() == header) return {};  // keep the header until payload comes

  // Commit the header.
  const bool begin = op != opcode::continuation;
  if (begin) {
    in_message_ = true;
    message_op_ = op;
    compressed_ = rsv1;
    utf8_.reset();
  }
  message_bytes_ = before + length;
  in_frame_ = true;
  frame_fin_ = fin;
  masked_ = masked;
  mask_key_ = key;
  mask_pos_ = 0;
  remaining_ = length;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(length, data.size() - header));
  return deliver(data.subspan(header, n), header + n, begin);
}

frame_event frame_parser::deliver(std::span<char> piece, std::size_t consumed,
                                  bool begin) noexcept {
  if (masked_) {
    apply_mask(piece, mask_key_, mask_pos_);
    mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + piece.size()) & 3);
  }
  remaining_ -= piece.size();
  const std::string_view bytes(piece.data(), piece.size());
  const bool check_utf8 = message_op_ == opcode::text && !compressed_;
  if (check_utf8 && !utf8_.feed(bytes)) return fail(errc::invalid_utf8);
  frame_event ev;
  ev.status = frame_status::event;
  ev.consumed = consumed;
  ev.kind = event_kind::data;
  ev.op = message_op_;
  ev.payload = bytes;
  ev.message_begin = begin;
  ev.frame_end = remaining_ == 0;
  ev.message_end = ev.frame_end && frame_fin_;
  ev.compressed = compressed_;
  if (ev.frame_end) in_frame_ = false;
  if (ev.message_end) {
    if (check_utf8 && !utf8_.complete()) return fail(errc::invalid_utf8);
    in_message_ = false;
    message_bytes_ = 0;
  }
  return ev;
}

frame_event frame_parser::control(std::span<char> payload, opcode op,
                                  std::size_t consumed) noexcept {
  frame_event ev;
  ev.status = frame_status::event;
  ev.consumed = consumed;
  ev.kind = event_kind::control;
  ev.op = op;
  ev.payload = std::string_view(payload.data(), payload.size());
  if (op == opcode::close) {
    if (payload.size() == 1) return fail(errc::bad_close_payload);
    ev.close_code = static_cast<std::uint16_t>(close_code::no_status);
    if (payload.size() >= 2) {
      ev.close_code = static_cast<std::uint16_t>(read_be(payload.data(), 2));
      if (!valid_close_code(ev.close_code)) return fail(errc::invalid_close_code);
      ev.close_reason = ev.payload.substr(2);
      if (!valid_utf8(ev.close_reason)) return fail(errc::invalid_close_reason);
    }
    closed_ = true;
  }
  return ev;
}

}  // namespace nbio::websocket
