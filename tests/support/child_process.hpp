// Test support. A forked helper process, for what one process cannot hold (15,000 sockets on
// each side of a connection under a 20,000-descriptor limit) or must not suffer (a lowered
// RLIMIT_NOFILE). Fork before this process starts threads: the child runs only `fn`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace nbio_test {

using namespace std::chrono_literals;

class child_process {
 public:
  // Forks. The child runs fn(from_parent_fd, to_parent_fd) and _exit()s with its result, so no
  // test framework code runs in it.
  explicit child_process(std::function<int(int from_parent, int to_parent)> fn);
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  // Kills and reaps the child if it is still running.
  ~child_process();

  pid_t pid() const noexcept { return pid_; }
  bool started() const noexcept { return pid_ > 0; }
  // The parent's ends of the two pipes.
  bool send_line(std::string_view line) const;
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 30s) const;
  // Closes the parent's write end: the child reads EOF.
  void close_input();
  // The child's exit status (0..255), 128+signal when killed by a signal, or -1 after killing
  // it because `timeout` passed.
  int wait(std::chrono::milliseconds timeout = 30s);
  // User plus system CPU seconds the child has used so far (all its threads), from /proc.
  double cpu_seconds() const;

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

// For the child side of the pipes: the same line protocol.
bool write_line(int fd, std::string_view line);
std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout);

}  // namespace nbio_test
