// nbio-load. Worker processes (--processes N) and the exact merge of what they report.
//
// The parent forks every worker before any engine or thread exists (fork copies only the
// calling thread). Each worker writes JSON lines to its pipe:
//   {"type":"progress","progress":{...load_progress...}}   about once a second
//   {"type":"result","result":{...load_result...}}         once, at the end
// and exits. The parent reads all pipes with poll(), adds up the latest progress of every worker
// for the live line, and merges the results exactly (counters and histogram buckets add).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "load_result.hpp"

namespace nbio_load {

// Writes `j` and a newline to `fd`, retrying short writes. False when the pipe is broken.
bool write_json_line(int fd, const nlohmann::json& j);

class process_pool {
 public:
  // worker(index, pipe_fd) runs in the child, which then _exit()s with its return value.
  using worker_fn = std::function<int(unsigned index, int pipe_fd)>;

  struct outcome {
    load_result result;      // merged over the workers that reported one
    unsigned reported = 0;   // workers that sent a result
    unsigned failed = 0;     // workers that exited non-zero, were killed or sent no result
    bool timed_out = false;  // the deadline passed and the workers were killed
  };

  // Forks `count` workers. Throws std::system_error when a pipe or fork fails.
  process_pool(unsigned count, const worker_fn& worker);
  // Kills (SIGKILL) and reaps workers still running.
  ~process_pool();
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  // Reads the workers until all have exited. on_tick(progress) runs about once a second with
  // the sum of their latest progress. When stop_requested() turns true the workers get SIGTERM
  // (they finish and report); past `deadline` they get SIGKILL. Once every worker still running
  // reports `ramped` (--ramp-first), they all get SIGUSR1: the go for their traffic.
  outcome run(const std::function<void(const load_progress&)>& on_tick,
              const std::function<bool()>& stop_requested, std::chrono::milliseconds deadline);

 private:
  struct worker {
    pid_t pid = -1;
    int fd = -1;
    std::string buffer;  // bytes read, up to the next newline
    load_progress progress;
    bool reported = false;
    bool exited = false;
    int status = 0;
  };

  void signal_all(int sig);
  void handle_line(worker& w, const std::string& line, outcome& out);

  std::vector<worker> workers_;
};

}  // namespace nbio_load
