// nbio-load. Samples server processes' memory and CPU from /proc (--server-pid, repeatable).
//
// VmRSS from /proc/PID/status, utime + stime from /proc/PID/stat; several pids are summed (a
// server with worker processes). Sampled once a second by the parent process only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace nbio_load {

// What the samples add up to over the run.
struct server_usage {
  bool sampled = false;             // at least two samples of every pid
  std::uint64_t rss_start_kib = 0;  // before the first connect
  std::uint64_t rss_peak_kib = 0;
  std::uint64_t rss_end_kib = 0;
  double cpu_seconds = 0;   // user + system over the run
  double wall_seconds = 0;  // between the first and the last sample
  // CPU use over the run in percent of one core; 0 when not sampled.
  double cpu_percent() const { return wall_seconds > 0 ? 100.0 * cpu_seconds / wall_seconds : 0; }
};

class server_sampler {
 public:
  explicit server_sampler(std::vector<int> pids);

  bool enabled() const noexcept { return !pids_.empty(); }
  // Reads every pid now. False when one of them cannot be read (it exited).
  bool sample();
  std::uint64_t rss_kib_now() const noexcept { return last_rss_kib_; }
  server_usage usage() const;

  static std::optional<std::uint64_t> read_rss_kib(int pid);
  // utime + stime in clock ticks.
  static std::optional<std::uint64_t> read_cpu_ticks(int pid);

 private:
  std::vector<int> pids_;
  unsigned samples_ = 0;
  std::chrono::steady_clock::time_point first_time_, last_time_;
  std::uint64_t first_ticks_ = 0, last_ticks_ = 0;
  std::uint64_t first_rss_kib_ = 0, peak_rss_kib_ = 0, last_rss_kib_ = 0;
};

}  // namespace nbio_load
