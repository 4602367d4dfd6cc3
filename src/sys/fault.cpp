// Private. Fault injection counters (built with NBIO_FAULT_INJECTION only).
#include "sys/fault.hpp"

#include <atomic>
#include <cerrno>

namespace nbio::detail::fault {

namespace {
// Loops, blocking-mode threads and the test thread all pass through the points: atomics.
std::atomic<std::uint64_t> counts[kind_count];
std::atomic<int> armed_kind{-1};  // -1: nothing armed
std::atomic<std::uint64_t> armed_nth{0};
std::atomic<int> armed_err{0};
std::atomic<bool> has_fired{false};

void zero_counts() noexcept {
  for (auto& c : counts)
    c.store(0, std::memory_order_relaxed);
}
}  // namespace

void arm(kind k, std::uint64_t nth, int err) noexcept {
  armed_kind.store(-1, std::memory_order_relaxed);
  zero_counts();
  has_fired.store(false, std::memory_order_relaxed);
  armed_nth.store(nth, std::memory_order_relaxed);
  armed_err.store(err, std::memory_order_relaxed);
  armed_kind.store(static_cast<int>(k), std::memory_order_release);
}

void disarm() noexcept {
  armed_kind.store(-1, std::memory_order_release);
}

void reset() noexcept {
  disarm();
  zero_counts();
  has_fired.store(false, std::memory_order_relaxed);
}

std::uint64_t calls(kind k) noexcept {
  return counts[static_cast<int>(k)].load(std::memory_order_relaxed);
}

bool fired() noexcept {
  return has_fired.load(std::memory_order_acquire);
}

const char* name(kind k) noexcept {
  switch (k) {
    case kind::accept:
      return "accept";
    case kind::read:
      return "read";
    case kind::write:
      return "write";
    case kind::epoll_ctl:
      return "epoll_ctl";
    case kind::sendfile:
      return "sendfile";
    case kind::alloc:
      return "alloc";
  }
  return "?";
}

bool fail(kind k) noexcept {
  const std::uint64_t n = counts[static_cast<int>(k)].fetch_add(1, std::memory_order_relaxed) + 1;
  if (armed_kind.load(std::memory_order_acquire) != static_cast<int>(k) ||
      n != armed_nth.load(std::memory_order_relaxed))
    return false;
  has_fired.store(true, std::memory_order_release);
  errno = armed_err.load(std::memory_order_relaxed);
  return true;
}

}  // namespace nbio::detail::fault
