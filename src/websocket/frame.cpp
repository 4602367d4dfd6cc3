// Private. The frame writer: header encoding, masking and close payloads.
#include "nbio/websocket/frame.hpp"

#include <cstring>

namespace nbio::websocket {

std::size_t encode_header(std::span<char, max_header_size> out, opcode op, std::uint64_t length,
                          bool fin, bool rsv1, const std::uint32_t* mask_key) noexcept {
  out[0] = static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(op));
  const char mask_bit = mask_key ? static_cast<char>(0x80) : 0;
  std::size_t n = 2;
  if (length <= 125) {
    out[1] = static_cast<char>(mask_bit | static_cast<char>(length));
  } else if (length <= 0xffff) {
    out[1] = static_cast<char>(mask_bit | 126);
    out[2] = static_cast<char>(length >> 8);
    out[3] = static_cast<char>(length);
    n = 4;
  } else {
    out[1] = static_cast<char>(mask_bit | 127);
    for (int i = 0; i < 8; ++i)
      out[2 + i] = static_cast<char>(length >> (56 - 8 * i));
    n = 10;
  }
  if (mask_key) {
    std::memcpy(out.data() + n, mask_key, 4);
    n += 4;
  }
  return n;
}

void apply_mask(std::span<char> data, std::uint32_t key, std::uint64_t offset) noexcept {
  // The key's bytes rotated so that byte 0 of the pattern applies to data[0]; doubled to 8
  // bytes, which the 4-byte period keeps valid at any alignment of `data`.
  unsigned char k[4];
  std::memcpy(k, &key, 4);
  unsigned char pattern[8];
  for (std::size_t i = 0; i < 8; ++i)
    pattern[i] = k[(offset + i) % 4];
  std::uint64_t wide;
  std::memcpy(&wide, pattern, 8);
  char* p = data.data();
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= wide;
    std::memcpy(p, &w, 8);
  }
  for (std::size_t i = 0; i < n; ++i)
    p[i] = static_cast<char>(p[i] ^ pattern[i]);
}

std::size_t make_close_payload(std::span<char, max_control_payload> out, close_code code,
                               std::string_view reason) noexcept {
  if (code == close_code::no_status) return 0;
  const auto value = static_cast<std::uint16_t>(code);
  out[0] = static_cast<char>(value >> 8);
  out[1] = static_cast<char>(value);
  if (reason.size() > max_close_reason) {
    std::size_t cut = max_close_reason;
    // Back off continuation bytes (10xxxxxx) so the cut falls before a lead byte; at most 3
    // of them belong to the code point the cut would split.
    for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xc0) == 0x80;
         ++i)
      --cut;
    if ((static_cast<unsigned char>(reason[cut]) & 0xc0) == 0x80) cut = max_close_reason;
    reason = reason.substr(0, cut);
  }
  if (!reason.empty())
    std::memcpy(out.data() + 2, reason.data(), reason.size());  // data() may be null
  return 2 + reason.size();
}

}  // namespace nbio::websocket
