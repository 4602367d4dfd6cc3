// nbio-load. What a worker reports (progress once a second, its result at the end), how the
// parent merges workers exactly (counters and histogram buckets add up) and the final report.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "latency_histogram.hpp"
#include "server_sampler.hpp"

namespace nbio_load {

struct load_options;

// A worker's counters so far: the live line adds them up over the workers.
struct load_progress {
  std::uint64_t up = 0;           // connections open now
  std::uint64_t established = 0;  // since start
  std::uint64_t failed = 0;       // connects that failed
  std::uint64_t errors = 0;       // connects failed plus connections lost before the end
  std::uint64_t messages = 0;     // replies received
  bool ramped = false;            // --ramp-first: every connect settled (not summed by +=)

  load_progress& operator+=(const load_progress& o) noexcept;
  nlohmann::json to_json() const;
  static load_progress from_json(const nlohmann::json& j);
  friend bool operator==(const load_progress&, const load_progress&) = default;
};

struct load_result {
  std::uint64_t connections = 0;  // requested
  std::uint64_t established = 0;
  std::uint64_t failed = 0;        // connects refused, timed out, unreachable
  std::uint64_t closed_early = 0;  // established, then lost before the end (peer, error, bad reply)
  std::uint64_t messages_sent = 0;
  std::uint64_t messages = 0;  // replies received complete
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_in = 0;
  // --tls: handshakes completed during the traffic, and how many of them resumed a session.
  std::uint64_t handshakes = 0;
  std::uint64_t resumed = 0;
  double connect_seconds = 0;  // first connect to the last one settled (slowest worker)
  double run_seconds = 0;      // first connect to the end of traffic (slowest worker)
  double traffic_seconds = 0;  // while messages could flow: run_seconds, or from the go with
                               // --ramp-first (slowest worker)
  latency_histogram latency;   // request to reply, nanoseconds
  std::string first_error;     // the first worker's first error, "" when none

  // Exact: counters and buckets add, times take the slowest worker, the first error is kept.
  void merge(const load_result& o);
  double messages_per_second() const {
    return traffic_seconds > 0 ? messages / traffic_seconds : 0;
  }
  double handshakes_per_second() const {
    return traffic_seconds > 0 ? handshakes / traffic_seconds : 0;
  }
  nlohmann::json to_json() const;
  static load_result from_json(const nlohmann::json& j);
  friend bool operator==(const load_result&, const load_result&) = default;
};

// The final JSON document: options, merged result, latency quantiles, server usage and the
// efficiency figures (server RSS per connection, msgs/s per server CPU %).
nlohmann::json report_json(const load_options& o, const load_result& r, const server_usage& s);
// The same as a human-readable table.
std::string report_table(const load_options& o, const load_result& r, const server_usage& s);

}  // namespace nbio_load
