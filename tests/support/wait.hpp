// Test support. Bounded waiting: every wait in the suite has a deadline, none asserts a timing.
#pragma once

#include <chrono>
#include <thread>

namespace nbio_test {

using namespace std::chrono_literals;

// Polls `pred` every millisecond until it holds or `timeout` passes; returns its last value.
template <class Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace nbio_test
