// Private. What a blocking-mode connection has besides its slot: its thread's wake-up eventfd
// and the queue of work other threads handed it (writes, closes, dispatches).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

namespace nbio {
class conn;
}

namespace nbio::detail {

class listener_impl;

struct blocking_state {
  int wake_fd = -1;  // eventfd; the thread polls it with the socket
  // The listener whose blocking-thread count this thread holds (kept here, not read from the
  // connection's handler table: conn::rebind may replace that).
  listener_impl* owner = nullptr;
  std::mutex mu;  // guards tasks and the socket's close against stop()
  std::vector<std::function<void(conn&)>> tasks;
  bool fd_closed = false;          // under mu: the thread closed the socket
  std::atomic<bool> stop{false};   // the engine is stopping: close with errc::shutdown
  std::atomic<bool> drain{false};  // graceful shutdown: close once idle
  // Bytes written through handles (conn_handle::write) handed to the thread and not yet
  // written: the blocking-mode counterpart of a write queue, bounded by max_queue (the
  // listener's max_write_queue when the thread started).
  std::atomic<std::size_t> handed{0};
  std::size_t max_queue = 0;
  bool reject = false;  // overflow_policy::reject: refuse the write, keep the connection
  // Closed for write_queue_overflow: the socket was shut down to wake a thread blocked in a
  // write, and whatever error that gives is reported as the overflow.
  std::atomic<bool> overflow{false};
};

}  // namespace nbio::detail
