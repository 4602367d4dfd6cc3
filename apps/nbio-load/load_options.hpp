// nbio-load. The command line: one struct with every knob, its parser and its validation.
//
// parse_load_options() never exits and never prints: it returns the options, or the exit code
// and the one line to print (the help text for --help), so a table of command lines can test it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nbio_load {

// What the machine allows, read once (tests pass fixed values).
struct system_limits {
  std::uint64_t ephemeral_ports = 28232;  // net.ipv4.ip_local_port_range, per source address
  std::uint64_t open_files = 20000;       // RLIMIT_NOFILE hard limit, per process
  // /proc/sys/net/ipv4/ip_local_port_range and getrlimit(RLIMIT_NOFILE).
  static system_limits current();
};

struct load_options {
  std::string mode = "tcp-echo";  // idle | tcp-echo | http | ws-echo | ws-idle | tls-handshake
  std::string host = "127.0.0.1";
  std::vector<std::uint16_t> ports;      // connections are spread over them round-robin
  std::uint64_t connections = 1;         // in all, over every process
  double connect_rate = 0;               // connects started per second in all; 0: unpaced
  std::uint64_t connect_window = 1000;   // connects in flight at most, in all
  double duration_s = 10;                // the run after the connects began; also the bound
  bool ramp_first = false;               // open every connection first, then run duration_s
  double ramp_timeout_s = 600;           // with ramp_first: the bound on the connects
  std::uint64_t messages = 0;            // replies to wait for in all; 0: run for duration_s
  std::uint64_t payload_size = 64;       // bytes per tcp-echo message
  std::string path = "/";                // http: the target of every GET
  unsigned pipeline = 1;                 // http: requests written at once; a message is a batch
  std::uint64_t in_flight = 0;           // messages in flight in all; 0: connections x per conn
  std::uint64_t in_flight_per_conn = 1;  // messages in flight on one connection (pipelining)
  unsigned source_ips = 0;        // source addresses 127.0.0.1..127.0.0.N; 0: as many as needed
  unsigned processes = 1;         // worker processes, each with its share of the connections
  unsigned loops = 0;             // event loops per worker; 0: one per core
  std::string backend = "epoll";  // the engine's kernel interface: epoll, io_uring or auto
  unsigned uring_buffers = 2048;  // io_uring: receive buffers per loop
  std::uint64_t connect_timeout_ms = 5000;
  std::vector<int> server_pids;  // sampled once a second from /proc
  // TLS: every connection handshakes (nbio::tls client context) before its traffic.
  bool tls = false;
  std::string tls_ca;         // verify the server against this CA file (PEM); empty: system store
  bool tls_insecure = false;  // no verification at all
  bool tls_resume = false;    // resume the last session per server (tls::client_options)
  std::string json_path;      // the JSON result goes here; empty: stdout
  std::string plot_path;      // an SVG of the run (gnuplot) goes here; empty: none

  // Set by worker_share(): this worker's first connection in the global numbering, which picks
  // its ports and source addresses so workers spread over them like one process would.
  std::uint64_t first_connection = 0;

  // "host:port" of the i-th port (IPv6 hosts bracketed).
  std::string remote(std::size_t port_index) const;
  // "127.0.0.K:0" source address K (1-based), or "" when the kernel should choose.
  std::string source(unsigned k) const;
  // The options of worker `index` of `processes`: its share of connections, in-flight messages
  // and message count (shares differ by at most one; they add up to the totals exactly).
  load_options worker_share(unsigned index) const;
  // The total in-flight messages once defaults are applied.
  std::uint64_t effective_in_flight() const;
  // Whether every connection does one exchange, closes and dials again (tls-handshake).
  bool reconnects() const { return mode == "tls-handshake"; }
};

struct parse_outcome {
  std::optional<load_options> options;  // set when the run should go ahead
  int exit_code = 0;                    // otherwise: 0 for --help, 2 for a bad command line
  std::string message;                  // otherwise: the help text or one error line
};

parse_outcome parse_load_options(int argc, const char* const* argv, const system_limits& limits);

// The first impossible combination in `o` as one line, or "" when the options can run. Also
// fills in derived defaults (source_ips when 0).
std::string validate(load_options& o, const system_limits& limits);

}  // namespace nbio_load
