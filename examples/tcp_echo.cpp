// tcp_echo: the TCP echo server that bench/ and scripts/demo.sh run.
//
//   tcp_echo --host H --port P [--loops N] [--io-mode nonblocking|blocking|mixed]
//            [--max-blocking-online N] [--idle-timeout-ms N] [--reuseport|--acceptor]
//            [--ports P1-P2] [--workers N] [--tls-cert FILE --tls-key FILE]
//
// Prints "listening on H:P" on stdout once it serves (P is the bound port when --port is 0; one
// line per port with --ports), echoes every byte back, and on SIGINT or SIGTERM shuts down
// gracefully and prints one line of counters on stderr. Scripts parse the first line: keep the
// command line and it stable.
//
// --workers N forks N worker processes (nbio::run_workers) that each listen on the same ports
// with SO_REUSEPORT, so the server can hold N times the per-process open-files limit; worker 0
// prints the "listening on" lines, each worker prints its own counters, and a crashed worker is
// restarted. Worker mode needs fixed ports.
//
// Frugal on purpose: the handler has no conn_data, so a connection costs the engine's 64-byte
// slot and nothing more; the benchmarks measure the server's RSS per idle connection with it.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

struct echo_handler {
  void on_data(nbio::conn& c, std::string_view bytes) { c.write(bytes); }
};

// Each connection is one fd: lift the soft open-files limit to the hard one (an unprivileged
// process may), so the server is not capped at the usual 1,024.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// "127.0.0.1" + 80 -> "127.0.0.1:80"; "::1" + 80 -> "[::1]:80".
std::string host_port(const std::string& host, std::uint16_t port) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// How long connections get to finish after SIGINT/SIGTERM before they are closed.
constexpr auto shutdown_deadline = std::chrono::seconds(5);

// "8000" or "8000-8099" -> [first, last]; false when malformed.
bool parse_port_range(const std::string& text, std::uint16_t& first, std::uint16_t& last) {
  unsigned a = 0, b = 0;
  char dash = 0, extra = 0;
  int n = std::sscanf(text.c_str(), "%u%c%u%c", &a, &dash, &b, &extra);
  if (n == 1)
    b = a;
  else if (n != 3 || dash != '-')
    return false;
  if (a == 0 || b < a || b > 65535) return false;
  first = static_cast<std::uint16_t>(a);
  last = static_cast<std::uint16_t>(b);
  return true;
}

struct server_settings {
  std::string host;
  std::uint16_t first_port = 0, last_port = 0;
  nbio::engine_options config;
  nbio::listen_options options;
};

// One server: an engine with a listener per port, until SIGINT or SIGTERM (blocked by the
// caller). `index` names the worker in its counters line; only worker 0 (or a lone server)
// prints the "listening on" lines.
int serve(const server_settings& s, int index) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);

  nbio::engine eng(s.config);
  std::vector<std::string> bound;
  try {
    for (unsigned port = s.first_port; port <= s.last_port; ++port) {
      auto& l = eng.listen(host_port(s.host, static_cast<std::uint16_t>(port)), echo_handler{},
                           s.options);
      bound.push_back(l.local_address().to_string());
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tcp_echo: %s\n", e.what());
    return 1;
  }
  eng.start();
  if (index <= 0) {
    for (const auto& b : bound)
      std::printf("listening on %s\n", b.c_str());
    std::fflush(stdout);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const bool drained = eng.shutdown(shutdown_deadline);

  const nbio::loop_stats total = eng.stats().total;
  std::string who = index < 0 ? "tcp_echo" : "tcp_echo worker " + std::to_string(index);
  std::fprintf(
      stderr,
      "%s: %s: accepted %llu closed %llu refused %llu bytes_in %llu bytes_out %llu "
      "(%s)\n",
      who.c_str(), strsignal(signal_number), static_cast<unsigned long long>(total.accepted),
      static_cast<unsigned long long>(total.closed), static_cast<unsigned long long>(total.refused),
      static_cast<unsigned long long>(total.bytes_in),
      static_cast<unsigned long long>(total.bytes_out),
      drained ? "all connections finished" : "shutdown deadline passed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio TCP echo server"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  nbio::engine_options config;
  nbio::listen_options options;
  unsigned idle_timeout_ms = 0;
  app.add_option("--host", host, "address to listen on (numeric IPv4 or IPv6)")
      ->capture_default_str();
  app.add_option("--port", port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  const std::map<std::string, nbio::io_mode> modes{{"nonblocking", nbio::io_mode::nonblocking},
                                                   {"blocking", nbio::io_mode::blocking},
                                                   {"mixed", nbio::io_mode::mixed}};
  std::string mode = "nonblocking";
  app.add_option("--io-mode", mode, "how connections are served (docs/io_modes.md)")
      ->check(CLI::IsMember({"nonblocking", "blocking", "mixed"}))
      ->capture_default_str();
  app.add_option("--max-blocking-online", options.max_blocking_online,
                 "mixed mode: connections served on their own thread before event loops take over")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", idle_timeout_ms, "close connections idle this long; 0 is off")
      ->capture_default_str();
  bool use_reuseport = false;
  bool use_acceptor = false;
  auto* reuseport_flag =
      app.add_flag("--reuseport", use_reuseport, "one SO_REUSEPORT socket per loop (default)");
  app.add_flag("--acceptor", use_acceptor, "one accepting socket on loop 0, round-robin")
      ->excludes(reuseport_flag);
  std::string ports;
  app.add_option("--ports", ports,
                 "listen on every port of a range, e.g. 8000-8099 (overrides --port)");
  unsigned workers = 0;
  app.add_option("--workers", workers,
                 "worker processes sharing the ports (0: this process serves)")
      ->capture_default_str();
  tls_flags tls;
  tls.add_server(app);
  CLI11_PARSE(app, argc, argv);
  options.tls = tls.server_context("tcp_echo");
  server_settings settings;
  settings.host = host;
  settings.first_port = settings.last_port = port;
  if (!ports.empty() && !parse_port_range(ports, settings.first_port, settings.last_port)) {
    std::fprintf(stderr, "tcp_echo: --ports %s: expected PORT or FIRST-LAST (1-65535)\n",
                 ports.c_str());
    return 2;
  }
  if (workers > 0 && settings.first_port == 0) {
    std::fprintf(stderr, "tcp_echo: --workers needs fixed ports (--port or --ports, not 0)\n");
    return 2;
  }
  options.mode = modes.at(mode);
  options.accept =
      use_acceptor ? nbio::accept_strategy::acceptor : nbio::accept_strategy::reuseport;
  options.conn.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);

  raise_fd_limit();
  // Block the stop signals before any thread exists: the loop threads inherit the mask, so
  // the signals stay pending for sigwait() below instead of interrupting a loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  settings.config = config;
  settings.options = options;
  if (workers == 0) return serve(settings, -1);
  nbio::workers_result r = nbio::run_workers({.count = workers}, [&settings](unsigned index) {
    return serve(settings, static_cast<int>(index));
  });
  std::fprintf(stderr, "tcp_echo: %u workers started, %u restarted, %u crashed\n", r.started,
               r.restarted, r.crashed);
  return r.exit_code;
}
