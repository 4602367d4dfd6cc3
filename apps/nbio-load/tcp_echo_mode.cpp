#include "tcp_echo_mode.hpp"

#include <cstring>

namespace nbio_load {

tcp_echo_mode::tcp_echo_mode(std::size_t payload_size) {
  payload_.resize(payload_size);
  for (std::size_t i = 0; i < payload_size; ++i)
    payload_[i] = static_cast<char>('a' + i % 26);
}

reply_scan tcp_echo_mode::scan(std::uint64_t& state, std::string_view bytes) const noexcept {
  reply_scan r;
  const std::size_t size = payload_.size();
  while (!bytes.empty()) {
    // Compare what is left of the current reply in one memcmp.
    const std::size_t offset = static_cast<std::size_t>(state);
    const std::size_t n = std::min(bytes.size(), size - offset);
    if (std::memcmp(bytes.data(), payload_.data() + offset, n) != 0) {
      r.error = true;
      return r;
    }
    bytes.remove_prefix(n);
    state = offset + n == size ? 0 : offset + n;
    if (state == 0) ++r.replies;
  }
  return r;
}

}  // namespace nbio_load
