// Private. Listener bookkeeping; accepting happens in loop.cpp.
#include "engine/listener_impl.hpp"

#include "sys/socket.hpp"

namespace nbio {

const address& listener::local_address() const noexcept {
  return static_cast<const detail::listener_impl*>(this)->local_address();
}
std::size_t listener::online() const noexcept {
  return static_cast<const detail::listener_impl*>(this)->online();
}
std::size_t listener::blocking_online() const noexcept {
  return static_cast<const detail::listener_impl*>(this)->blocking_online();
}

namespace detail {

listener_impl::~listener_impl() {
  // Sockets of an engine that never ran (a running loop closes its own on stop).
  for (auto& ls : sockets)
    sys::close(ls->fd);
}

bool listener_impl::claim_blocking() noexcept {
  if (options_.mode == io_mode::blocking) {
    blocking_online_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Mixed: a blocking slot while fewer than max_blocking_online are taken.
  std::size_t current = blocking_online_.load(std::memory_order_relaxed);
  while (current < options_.max_blocking_online) {
    if (blocking_online_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed))
      return true;
  }
  return false;
}

}  // namespace detail
}  // namespace nbio
