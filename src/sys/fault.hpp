// Private. Fault injection for the test trees (CMake NBIO_FAULT_INJECTION,
// docs/fault_injection.md): the Nth call of one kind fails with a chosen errno, as if the kernel
// (or malloc) had refused it.
//
// Each kind is injected in the wrapper(s) every call site of that kind goes through:
//   accept     sys::accept (accept4)
//   read       sys::recv (the loop's and the blocking runner's reads, TLS input included)
//   write      sys::send, sys::sendv (direct writes, queue flushes, TLS records, close_notify)
//   epoll_ctl  poller::add / modify / remove
//   sendfile   sys::sendfile
//   alloc      write_pool's block and queue allocation ("fails" = reports ENOMEM)
// A wrapper that retries EINTR retries an injected one too: the injection stands in for the
// syscall, inside the retry loop.
//
// Built without the option, fail() is a constexpr false and the points compile to nothing. The
// definition is given only to the files that hold a point (src/CMakeLists.txt): include this
// header from another file and list it there too.
#pragma once

#include <cstdint>

#ifndef NBIO_FAULT_INJECTION
#define NBIO_FAULT_INJECTION 0
#endif

namespace nbio::detail::fault {

enum class kind : std::uint8_t { accept, read, write, epoll_ctl, sendfile, alloc };
inline constexpr int kind_count = 6;

#if NBIO_FAULT_INJECTION

// Any thread. Arms one fault: the nth call of `k` (1-based, counted from this call: every
// kind's counter restarts at 0) fails once with `err`. Replaces an earlier arming.
void arm(kind k, std::uint64_t nth, int err) noexcept;
// Any thread. No fault armed; the counters keep counting.
void disarm() noexcept;
// Counters back to 0 (and nothing armed): a test counts the calls of a session, then sweeps.
void reset() noexcept;
// Calls of `k` since the last arm() or reset().
std::uint64_t calls(kind k) noexcept;
// Whether the armed fault has fired since arm().
bool fired() noexcept;
const char* name(kind k) noexcept;

// The injection point: counts the call; true when it is the armed one, with errno set to the
// armed error (the caller then behaves as if its syscall had returned -1).
bool fail(kind k) noexcept;

#else

constexpr bool fail(kind) noexcept {
  return false;
}

#endif

}  // namespace nbio::detail::fault
