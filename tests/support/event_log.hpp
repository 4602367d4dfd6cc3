// Test support. A thread-safe append-only log that handlers (on loop threads) write and the
// test thread waits on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace nbio_test {

template <class T>
class event_log {
 public:
  void push(T value) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(value));
    }
    cv_.notify_all();
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  std::vector<T> snapshot() const {
    std::lock_guard lock(mutex_);
    return items_;
  }
  // True once at least `n` items were pushed; false when `timeout` passed first.
  bool wait_for_size(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<T> items_;
};

}  // namespace nbio_test
