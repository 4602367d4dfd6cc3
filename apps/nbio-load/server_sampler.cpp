#include "server_sampler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace nbio_load {

namespace {

std::string proc_path(int pid, const char* file) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/proc/%d/%s", pid, file);
  return buf;
}

}  // namespace

server_sampler::server_sampler(std::vector<int> pids) : pids_(std::move(pids)) {}

std::optional<std::uint64_t> server_sampler::read_rss_kib(int pid) {
  std::FILE* f = std::fopen(proc_path(pid, "status").c_str(), "r");
  if (!f) return std::nullopt;
  char line[256];
  std::optional<std::uint64_t> rss;
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) {
      rss = kib;
      break;
    }
  }
  std::fclose(f);
  return rss;
}

std::optional<std::uint64_t> server_sampler::read_cpu_ticks(int pid) {
  std::FILE* f = std::fopen(proc_path(pid, "stat").c_str(), "r");
  if (!f) return std::nullopt;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may contain spaces and parens
  if (!p) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  // Fields after the name: state(3) ... utime(14) stime(15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2)
    return std::nullopt;
  return utime + stime;
}

bool server_sampler::sample() {
  std::uint64_t rss = 0, ticks = 0;
  for (int pid : pids_) {
    const auto r = read_rss_kib(pid);
    const auto t = read_cpu_ticks(pid);
    if (!r || !t) return false;
    rss += *r;
    ticks += *t;
  }
  const auto now = std::chrono::steady_clock::now();
  if (samples_++ == 0) {
    first_time_ = now;
    first_ticks_ = ticks;
    first_rss_kib_ = rss;
  }
  last_time_ = now;
  last_ticks_ = ticks;
  last_rss_kib_ = rss;
  peak_rss_kib_ = std::max(peak_rss_kib_, rss);
  return true;
}

server_usage server_sampler::usage() const {
  server_usage u;
  u.sampled = samples_ >= 2;
  u.rss_start_kib = first_rss_kib_;
  u.rss_peak_kib = peak_rss_kib_;
  u.rss_end_kib = last_rss_kib_;
  u.cpu_seconds =
      static_cast<double>(last_ticks_ - first_ticks_) / static_cast<double>(sysconf(_SC_CLK_TCK));
  u.wall_seconds = std::chrono::duration<double>(last_time_ - first_time_).count();
  return u;
}

}  // namespace nbio_load
