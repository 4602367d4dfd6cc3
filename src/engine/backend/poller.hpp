// Private. The event back-end behind a narrow interface: register a descriptor with a tagged
// pointer, wait for readiness. poller_epoll.cpp implements it; io_uring (poll mode) and kqueue
// come as sibling files chosen by CMake, with the same header.
#pragma once

#include <cstdint>
#include <system_error>

#include "nbio/engine/config.hpp"

namespace nbio::detail {

enum poll_flags : std::uint32_t {
  poll_read = 1u << 0,
  poll_write = 1u << 1,
  poll_hangup = 1u << 2,  // peer closed (both sides or its write side)
  poll_error = 1u << 3,
};

struct poll_event {
  void* data;
  std::uint32_t flags;
};

class poller {
 public:
  poller();
  ~poller();
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  // Thread-safe (the kernel serialises registrations), so listeners can be added from the
  // setup thread while the loop runs. `edge` asks for edge-triggered notification.
  std::error_code add(int fd, std::uint32_t interest, bool edge, void* data) noexcept;
  std::error_code modify(int fd, std::uint32_t interest, bool edge, void* data) noexcept;
  std::error_code remove(int fd) noexcept;
  // Waits up to timeout_ms (-1: forever) and fills at most `max` events. Returns the count;
  // 0 on timeout or EINTR.
  int wait(poll_event* out, int max, int timeout_ms) noexcept;

 private:
  int fd_ = -1;
  void* scratch_ = nullptr;  // the back-end's own event array
  int scratch_size_ = 0;
};

}  // namespace nbio::detail
