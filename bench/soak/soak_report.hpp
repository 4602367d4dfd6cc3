// Internal to bench/soak. What soak_client samples from the server processes, the verdict it
// draws from the samples, and the report it writes (JSON, gnuplot columns, a summary table).
//
// Main thread only: the client's loops never call these.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace soak {

struct server_ref {
  std::string name;  // "plain", "tls": names the server in lines, columns and the report
  int pid = 0;
};

// One look at a server process: VmRSS, entries in /proc/PID/fd, user + system CPU time.
struct server_point {
  std::uint64_t rss_kib = 0;
  std::uint64_t fds = 0;
  double cpu_s = 0;
};

// Reads `pid`'s /proc files; false when the process is gone.
bool read_server(int pid, server_point& p);

// One sample a second (four a second while draining): the client's counters and every server.
struct sample {
  double t = 0;       // seconds since the client's engine started
  std::string phase;  // "warm-up", "steady" or "drain"
  std::uint64_t hold_up = 0, churn_up = 0;
  std::uint64_t connected = 0, messages = 0, bytes = 0, errors = 0;  // totals so far
  std::vector<server_point> servers;                                 // as the server_refs
};

// The progress line for `x`, with rates since `before`.
void print_progress(const std::vector<server_ref>& servers, const sample& x, const sample& before);

// The client's totals at the end of the run.
struct client_totals {
  std::uint64_t connects = 0, connected = 0, churn_cycles = 0, messages = 0, bytes = 0;
  std::uint64_t mismatched_bytes = 0, mismatched_conns = 0;
  std::uint64_t connect_failures = 0, closed_early = 0, left_open = 0;
  std::string first_error, first_mismatch;
  double cpu_s = 0;  // the client's own, getrusage
  std::uint64_t max_rss_kib = 0;
};

// What the verdict needs besides the samples.
struct run_facts {
  double warm_end = -1;  // when warm-up ended (s); < 0: never at full strength
  double load_end = 0;   // when the load stopped (s)
  double window_s = 10;  // RSS means over this many seconds
  double max_drift_percent = 5;
  std::uint64_t fd_slack = 8;
  std::uint64_t hold = 0;  // the hold group's full strength
  bool interrupted = false;
  bool server_gone = false;
};

struct server_summary {
  std::string name;
  int pid = 0;
  double rss_before_kib = 0;  // before the first connect
  double rss_warm_kib = 0;    // mean over the window after warm-up
  double rss_end_kib = 0;     // mean over the last window of the load
  double rss_peak_kib = 0;
  double rss_after_close_kib = 0;  // the last sample, every connection closed
  double drift_percent = 0;        // rss_end over rss_warm
  std::uint64_t fds_before = 0, fds_peak = 0, fds_end = 0;
  double cpu_s = 0;  // over the run
};

struct verdict {
  std::vector<server_summary> servers;
  std::vector<std::string> failures;  // one line per failed check; empty: passed
};

// Judges the run. `before` is each server's point before the first connect; `samples` must not
// be empty.
verdict judge(const std::vector<server_ref>& servers, const std::vector<server_point>& before,
              const std::vector<sample>& samples, const client_totals& totals,
              const run_facts& facts);

// {options, summary, samples} as JSON; `options` is copied in as given.
nlohmann::json report_json(nlohmann::json options, const verdict& v, const client_totals& totals,
                           const run_facts& facts, const std::vector<sample>& samples);

// The samples as columns for bench/soak/plot.gp: t hold_up churn_up connects/s msgs/s, then
// RSS (MiB) and descriptors of each server; comment lines first give warmup_end_s and
// load_end_s. False when the file cannot be written.
bool write_data(const std::string& path, const std::vector<server_ref>& servers,
                const std::vector<sample>& samples, const run_facts& facts);

// The summary table on stdout, then one "soak: FAILED:" line per failure on stderr.
void print_summary(const verdict& v, const client_totals& totals, const run_facts& facts,
                   double elapsed_s);

}  // namespace soak
