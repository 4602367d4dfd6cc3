// Public. One event loop: a thread with its own epoll instance, timer wheel and task queue.
//
// The engine owns the loops; users get loop& from conn::owner_loop() or engine::loop_at().
// post() is the one cross-thread entry point: everything else is for the loop's thread only
// (asserted in debug builds).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace nbio {

class engine;

// A loop's counters. Each is written by one thread and read by any (relaxed atomics).
struct loop_stats {
  std::uint64_t online = 0;    // connections open now (accepted, dialed and blocking-mode)
  std::uint64_t accepted = 0;  // connections accepted since start
  std::uint64_t dialed = 0;    // outgoing connections established since start
  std::uint64_t closed = 0;    // connections closed since start
  std::uint64_t refused = 0;   // accepted and closed at once by a max_connections cap
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  // Connections this loop closed because the engine's write queues passed
  // engine_options::max_write_queue_total (their cause: errc::write_queue_overflow).
  std::uint64_t write_budget_closes = 0;

  loop_stats& operator+=(const loop_stats& o) noexcept;
};

// Names a timer for cancel_timer(). A stale id (fired one-shot, cancelled) cancels nothing.
struct timer_id {
  std::uint32_t index = 0;
  std::uint32_t gen = 0;
};

class loop {
 public:
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  // Any thread. Runs fn on this loop's thread, in the order posted per posting thread. Tasks
  // are drained in batches; the loop is woken through an eventfd only when its queue was
  // empty. Tasks posted after the engine stopped are dropped.
  void post(std::function<void()> fn);
  bool in_loop_thread() const noexcept;
  std::size_t index() const noexcept;
  nbio::engine& owner() const noexcept;
  loop_stats stats() const noexcept;

  // Loop thread only. Runs fn once after `delay` (millisecond resolution).
  timer_id add_timer(std::chrono::milliseconds delay, std::function<void()> fn);
  // Loop thread only. Runs fn every `interval` until cancelled.
  timer_id add_repeating_timer(std::chrono::milliseconds interval, std::function<void()> fn);
  // Loop thread only. True when the timer was pending and is now cancelled.
  bool cancel_timer(timer_id id);
  // The loop's clock: milliseconds since the engine started, read once per loop turn.
  std::uint32_t now_ms() const noexcept;

 protected:
  loop() = default;
  ~loop() = default;
};

}  // namespace nbio
