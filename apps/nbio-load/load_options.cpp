#include "load_options.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>

namespace nbio_load {

namespace {

// Descriptors a worker needs besides its connections: stdio, the pipe, epoll and eventfds per
// loop, the resolver, /proc files. 64 is several times what it uses.
constexpr std::uint64_t spare_descriptors = 64;

std::string num(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(v));
  return buf;
}

bool is_loopback_v4(const std::string& host) {
  return host.starts_with("127.") || host == "localhost";
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

system_limits system_limits::current() {
  system_limits l;
  std::uint64_t low = 0, high = 0;
  if (std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high && high >= low)
    l.ephemeral_ports = high - low + 1;
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_max != RLIM_INFINITY) l.open_files = r.rlim_max;
  return l;
}

std::string load_options::remote(std::size_t port_index) const {
  std::string r;
  const bool bare_v6 = host.find(':') != std::string::npos && !host.starts_with('[');
  if (bare_v6) r += '[';
  r += host == "localhost" ? "127.0.0.1" : host;
  if (bare_v6) r += ']';
  r += ':';
  r += num(ports.at(port_index));
  return r;
}

std::string load_options::source(unsigned k) const {
  if (source_ips <= 1) return {};
  std::string s = "127.0.0.";
  s += num(k);
  s += ":0";
  return s;
}

std::uint64_t load_options::effective_in_flight() const {
  if (mode == "idle" || mode == "ws-idle") return 0;
  return in_flight ? in_flight : connections * in_flight_per_conn;
}

load_options load_options::worker_share(unsigned index) const {
  // Share `total` over the workers: the first (total % processes) get one more.
  auto share = [&](std::uint64_t total) {
    return total / processes + (index < total % processes ? 1 : 0);
  };
  auto before = [&](std::uint64_t total) {
    return index * (total / processes) + std::min<std::uint64_t>(index, total % processes);
  };
  load_options w = *this;
  w.connections = share(connections);
  w.first_connection = first_connection + before(connections);
  w.in_flight = share(effective_in_flight());
  w.messages = share(messages);
  w.connect_rate = connect_rate / processes;
  w.connect_window = std::max<std::uint64_t>(1, share(connect_window));
  w.processes = 1;
  w.server_pids.clear();
  return w;
}

std::string validate(load_options& o, const system_limits& limits) {
  if (o.ports.empty()) return "--port is required";
  if (std::find(o.ports.begin(), o.ports.end(), 0) != o.ports.end())
    return "--port 0 is not a server port";
  const bool loopback = is_loopback_v4(o.host);
  if (o.source_ips > 1 && !loopback)
    return "--source-ips needs a 127.x.y.z target (each source address is a loopback address)";
  // Half of each source address's ephemeral range per port by default, leaving the rest to
  // TIME_WAIT from earlier runs; the hard limit below is the whole range.
  const std::uint64_t per_source = o.ports.size() * limits.ephemeral_ports;
  if (o.source_ips == 0)
    o.source_ips =
        loopback ? static_cast<unsigned>(std::clamp<std::uint64_t>(
                       ceil_div(o.connections, std::max<std::uint64_t>(1, per_source / 2)), 1, 254))
                 : 1;
  const std::uint64_t capacity = per_source * o.source_ips;
  if (o.connections > capacity)
    return num(o.connections) + " connections exceed what " + num(o.ports.size()) + " port(s) x " +
           num(o.source_ips) + " source address(es) x " + num(limits.ephemeral_ports) +
           " ephemeral ports allow (" + num(capacity) + "): add --port or --source-ips";
  if (o.processes > o.connections)
    return "--processes " + num(o.processes) + " is more than --connections " + num(o.connections);
  const std::uint64_t per_process = ceil_div(o.connections, o.processes);
  if (per_process + spare_descriptors > limits.open_files) {
    const std::uint64_t need =
        ceil_div(o.connections, limits.open_files - std::min(limits.open_files, spare_descriptors));
    return num(o.connections) + " connections in " + num(o.processes) + " process(es) are " +
           num(per_process) + " per process, over the open-files limit of " +
           num(limits.open_files) + ": use --processes " + num(need) + " or more";
  }
  const bool ws = o.mode == "ws-echo" || o.mode == "ws-idle";
  const bool http = o.mode == "http" || o.mode == "tls-handshake";
  if (o.mode != "http" && o.pipeline != 1) return "--pipeline needs --mode http";
  if (!http && !ws && o.path != "/") return "--path needs --mode http or ws-* (or tls-handshake)";
  if ((http || ws) && (o.path.empty() || o.path.front() != '/' ||
                       o.path.find_first_of(" \r\n") != std::string::npos))
    return "--path must start with / and hold no space or line break";
  if (o.mode == "idle" || o.mode == "ws-idle") {
    if (o.messages || o.in_flight || o.in_flight_per_conn != 1)
      return "--messages and --in-flight* need a traffic mode (--mode tcp-echo), not idle";
  } else {
    if (o.in_flight > o.connections * o.in_flight_per_conn)
      return "--in-flight " + num(o.in_flight) + " is more than " + num(o.connections) +
             " connections x " + num(o.in_flight_per_conn) +
             " per connection (--in-flight-per-conn) can carry";
    if (o.messages && o.messages < o.effective_in_flight())
      return "--messages " + num(o.messages) + " is fewer than the " +
             num(o.effective_in_flight()) + " messages in flight";
  }
  if (!o.tls && (!o.tls_ca.empty() || o.tls_insecure || o.tls_resume))
    return "--tls-ca, --tls-insecure and --tls-resume need --tls";
  if (!o.tls_ca.empty() && o.tls_insecure) return "--tls-ca and --tls-insecure exclude each other";
  if (!o.tls_ca.empty() && ::access(o.tls_ca.c_str(), R_OK) != 0)
    return "--tls-ca " + o.tls_ca + ": cannot read it";
  if (o.reconnects()) {
    if (!o.tls) return "--mode tls-handshake needs --tls";
    if (o.ramp_first) return "--mode tls-handshake reconnects all the time: no --ramp-first";
    if (o.in_flight || o.in_flight_per_conn != 1)
      return "--mode tls-handshake carries one request per connection: no --in-flight*";
  }
  for (int pid : o.server_pids)
    if (pid <= 0 || ::access(("/proc/" + num(static_cast<std::uint64_t>(pid))).c_str(), F_OK) != 0)
      return "--server-pid " + std::to_string(pid) + ": no such process";
  return {};
}

parse_outcome parse_load_options(int argc, const char* const* argv, const system_limits& limits) {
  load_options o;
  CLI::App app{
      "nbio-load: a load generator on the nbio engine's dialer. Opens --connections to the "
      "target and holds them (--mode idle) or echoes messages on them (--mode tcp-echo); "
      "prints a live line and a table on stderr and a JSON result on stdout (or --json)."};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.add_option("--mode", o.mode,
                 "traffic: idle, tcp-echo, http (keep-alive GETs), ws-echo or ws-idle (WebSocket), "
                 "tls-handshake (with --tls: connect, handshake, one GET with Connection: close, "
                 "close, again)")
      ->capture_default_str()
      ->check(CLI::IsMember({"idle", "tcp-echo", "http", "ws-echo", "ws-idle", "tls-handshake"}));
  app.add_option("--host", o.host, "target address")->capture_default_str();
  app.add_option("-p,--port", o.ports, "target port; repeat or comma-separate for several")
      ->required()
      ->delimiter(',');
  app.add_option("-c,--connections", o.connections, "connections in all")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 24));
  app.add_option("--connect-rate", o.connect_rate, "connects started per second; 0: unpaced")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--connect-window", o.connect_window, "connects in flight at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--connect-timeout-ms", o.connect_timeout_ms, "give up a connect after this")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{600000}));
  app.add_option("-d,--duration", o.duration_s, "seconds the run lasts from the first connect")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  app.add_flag("--ramp-first", o.ramp_first,
               "open every connection (in every process) first, then run --duration of traffic "
               "from then on");
  app.add_option("--ramp-timeout", o.ramp_timeout_s,
                 "with --ramp-first: seconds the connects may take at most")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("-n,--messages", o.messages, "stop after this many replies in all (0: no limit)")
      ->capture_default_str();
  app.add_option("-s,--size", o.payload_size, "tcp-echo payload bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{16} << 20));
  app.add_option("--path", o.path, "http: the target of the GETs; ws-*: of the upgrade")
      ->capture_default_str();
  app.add_option("--pipeline", o.pipeline,
                 "http: requests written at once; a message (msgs/s, latency) is the batch")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1023u));
  app.add_option("--in-flight", o.in_flight,
                 "messages in flight in all (a fixed concurrency spread over the connections); "
                 "0: every connection carries --in-flight-per-conn")
      ->capture_default_str();
  app.add_option("--in-flight-per-conn", o.in_flight_per_conn,
                 "messages in flight on one connection (pipelining)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1024}));
  app.add_option("--source-ips", o.source_ips,
                 "spread over source addresses 127.0.0.1..127.0.0.N; 0: as many as needed")
      ->capture_default_str()
      ->check(CLI::Range(0u, 254u));
  app.add_option("--processes", o.processes, "worker processes (each under the fd limit)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--loops", o.loops, "event loops per worker; 0: one per core")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1024u));
  app.add_option("--backend", o.backend,
                 "the load's kernel interface: epoll, io_uring or auto (docs/backends.md)")
      ->check(CLI::IsMember({"epoll", "io_uring", "auto"}))
      ->capture_default_str();
  app.add_option("--uring-buffers", o.uring_buffers,
                 "io_uring: receive buffers per loop (4 KiB each)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 32768u));
  app.add_option("--server-pid", o.server_pids, "server process to sample (RSS, CPU); repeatable");
  app.add_flag("--tls", o.tls,
               "TLS on every connection (verified against the system store, the name checked "
               "being --host, unless --tls-ca or --tls-insecure)");
  app.add_option("--tls-ca", o.tls_ca, "with --tls: trust this CA file (PEM)");
  app.add_flag("--tls-insecure", o.tls_insecure, "with --tls: do not verify the server");
  app.add_flag("--tls-resume", o.tls_resume,
               "with --tls: offer the last session the server gave (tickets); the result counts "
               "the handshakes that resumed");
  app.add_option("--json", o.json_path, "write the JSON result here instead of stdout");
  app.add_option("--plot", o.plot_path,
                 "draw connections up, server RSS and msgs/s over time into this SVG (gnuplot)");

  parse_outcome out;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.message = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    out.message = std::string("nbio-load: ").append(e.what()).append(" (see --help)");
    return out;
  }
  if (std::string err = validate(o, limits); !err.empty()) {
    out.exit_code = 2;
    out.message = "nbio-load: " + err;
    return out;
  }
  out.options = std::move(o);
  return out;
}

}  // namespace nbio_load
