// Public. A pool of threads for work that must not run on an event loop: blocking HTTP handlers
// (http::on_pool), the expensive step of TLS server handshakes (tls::server_options::
// handshake_threads), or an application's own blocking calls.
//
//   nbio::thread_pool pool(8);
//   pool.post([] { slow_call(); });  // any thread; runs on a pool thread, first in first out
//
// One queue under one mutex: tasks here cost microseconds to milliseconds (a database call, an
// RSA signature), so the lock is not what bounds them.
//
// Thread affinity: post() and size() from any thread. Lifetime: the destructor runs the tasks
// queued so far, then joins; whatever the tasks touch outlives the pool.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nbio {

class thread_pool {
 public:
  // `threads` workers; 0 means one per core.
  explicit thread_pool(unsigned threads = 0);
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool();

  // Any thread: runs `task` on a pool thread (FIFO).
  void post(std::function<void()> task);
  std::size_t size() const noexcept { return threads_.size(); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace nbio
