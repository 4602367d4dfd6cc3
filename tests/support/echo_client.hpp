// Test support. Drives many echo exchanges at once from one thread with poll(): each session
// writes its payload while reading the echo back, so neither side can fill its buffers and wait
// on the other.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "support/unique_fd.hpp"

namespace nbio_test {

struct echo_session {
  unique_fd fd;
  std::string payload;   // what to send
  std::string received;  // the echo so far
  std::size_t sent = 0;
  int error = 0;     // errno of a failed read or write
  bool eof = false;  // the server closed before echoing everything
};

// Runs every session until each has received as many bytes as it sent, one failed, or `timeout`
// passed. Makes the sockets non-blocking. True when every session completed (compare
// received with payload to check the bytes).
bool run_echo_sessions(std::vector<echo_session>& sessions, std::chrono::milliseconds timeout);

}  // namespace nbio_test
