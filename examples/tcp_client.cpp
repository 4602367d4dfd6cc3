// tcp_client: many outgoing connections through engine::make_dialer, each checked with one echo.
//
//   tcp_client --host H --port P [--connections N] [--hold-seconds S] [--message TEXT]
//              [--source-ips K] [--loops N] [--dial-window W] [--echo-window E]
//              [--traffic-seconds T] [--traffic-window F] [--tls [--tls-ca FILE | --tls-insecure]]
//
// Opens N connections, then sends TEXT on each and checks that the same bytes come back, holds
// them S seconds, closes them (graceful engine shutdown) and prints a summary table on stdout.
// With T > 0, the last T seconds of the hold carry echo traffic (the first part stays idle, for
// a memory reading of idle connections): F of the connections each keep
// one message in flight (send, wait for the echo, send again), and the summary reports msgs/s
// and the round trip under that load.
// A progress line goes to stderr once a second; a script can wait for the "holding" line on
// stdout (the demo and the benchmarks use apps/nbio-load instead). SIGINT or SIGTERM skips to
// the close.
//
// Both phases are paced: at most W connects and E echoes in flight. Unpaced, 15,000 echoes sent
// at once would measure the time to echo all of them (queueing), not one round trip.
//
// Ephemeral ports: one source address has about 28,000 (net.ipv4.ip_local_port_range), some
// of them held in TIME_WAIT by a previous run. Towards a 127.x.y.z server the connections are
// spread over the source addresses 127.0.0.1..127.0.0.K (all of 127/8 is loopback), each with
// its own port range; K is derived from N unless --source-ips gives it.
//
// --tls dials through TLS (tcp_echo --tls-cert/--tls-key on the other side): a connection counts
// as established once its handshake is done, and the server is verified against the system's
// trust store, or --tls-ca (--tls-insecure: not verified, for testing; either implies --tls).
// A refused certificate fails the connection with OpenSSL's reason.
//
// Exit status: 0 when every connection was established and echoed and none closed early.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <nbio/nbio.hpp>

#include "backend_flag.hpp"
#include "tls_flags.hpp"

namespace {

using steady = std::chrono::steady_clock;

std::uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// A log-bucketed histogram of nanoseconds: 16 buckets per power of two (a reported quantile is
// the bucket's midpoint, within 3% of the exact value), 8 KiB of counters, O(1) record.
class log_histogram {
 public:
  void record(std::uint64_t v) {
    ++counts_[bucket_of(v)];
    ++count_;
    max_ = std::max(max_, v);
  }
  void merge(const log_histogram& o) {
    for (std::size_t i = 0; i < counts_.size(); ++i)
      counts_[i] += o.counts_[i];
    count_ += o.count_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // The value below which a fraction q of the samples lie; 0 when empty.
  std::uint64_t quantile(double q) const {
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(q * count_ + 0.5));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpoint_of(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned sub_bits = 4;
  static constexpr std::uint64_t sub = std::uint64_t{1} << sub_bits;
  // Values below 2 * sub are their own bucket; above, bucket = shift * sub + the value's top
  // five bits (16..31), shift being how far those bits were shifted down.
  static std::size_t bucket_of(std::uint64_t v) {
    if (v < 2 * sub) return v;
    const unsigned shift = std::bit_width(v) - 1 - sub_bits;
    return shift * sub + (v >> shift);
  }
  static std::uint64_t midpoint_of(std::size_t b) {
    if (b < 2 * sub) return b;
    const unsigned shift = b / sub - 1;
    return ((b % sub + sub) << shift) + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::uint64_t, (64 - sub_bits + 1) * sub> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

// What the loops report to the main thread. Counters are atomics (read once a second by the
// progress line); each histogram is written by its own loop only and read after the engine
// has stopped, which joins the loop threads.
struct tally {
  struct alignas(64) per_loop {
    log_histogram rtt;
    log_histogram traffic_rtt;                   // the traffic phase's round trips
    std::atomic<std::uint64_t> traffic_msgs{0};  // written by this loop only
    // Written by on_open (loop thread) before it counts `established`; the main thread reads
    // it only once every dial has settled, so no more writes follow.
    std::vector<nbio::conn_handle> handles;
  };
  std::string message;
  std::atomic<bool> closing{false};
  std::atomic<bool> traffic{false};  // the traffic phase runs: echoed connections send again
  std::atomic<std::uint64_t> established{0};
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> verified{0};
  std::atomic<std::uint64_t> mismatched{0};
  std::atomic<std::uint64_t> closed_early{0};  // closed by the peer or an error before the end
  std::atomic<std::uint64_t> echo_lost{0};     // closed before its echo completed
  std::deque<per_loop> loops;                  // deque: per_loop holds an atomic, so it never moves
  std::mutex error_mutex;
  std::string first_error;

  void note_error(const std::string& what) {
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = what;
  }
  std::uint64_t echoes_settled() const { return verified + mismatched + echo_lost; }
  std::uint64_t traffic_msgs() const {
    std::uint64_t n = 0;
    for (const auto& l : loops)
      n += l.traffic_msgs.load(std::memory_order_relaxed);
    return n;
  }
};

// The connection handler: 16 bytes of conn_data in the connection's own slot.
struct client_handler {
  struct conn_data {
    std::uint64_t sent_ns = 0;
    std::uint32_t received = 0;
    bool opened = false;
    bool echoed = false;   // verified or mismatched: nothing more is expected
    bool looping = false;  // in the traffic phase: each echo is followed by the next message
  };
  tally* t;

  void on_open(nbio::conn& c) {
    c.data<conn_data>().opened = true;
    t->loops[c.owner_loop().index()].handles.push_back(c.handle());
    ++t->open;
    ++t->established;  // last: publishes the handle (see tally::per_loop)
  }

  // Runs on the connection's thread (through conn_handle::dispatch): one echo request.
  static void send_message(nbio::conn& c, tally* t) {
    c.data<conn_data>().sent_ns = now_ns();
    if (auto ec = c.write(t->message)) c.close(ec);
  }

  // Runs on the connection's thread: joins the traffic phase (after its first echo).
  static void start_traffic(nbio::conn& c, tally* t) {
    auto& d = c.data<conn_data>();
    if (!d.echoed || d.looping || !t->traffic) return;
    d.looping = true;
    d.received = 0;
    send_message(c, t);
  }

  // A traffic-phase echo: count it, and send the next message while the phase lasts.
  void on_traffic_data(nbio::conn& c, conn_data& d, std::string_view bytes) {
    const std::string_view expected = std::string_view(t->message).substr(d.received);
    if (bytes.size() > expected.size() || !expected.starts_with(bytes)) {
      ++t->mismatched;
      t->note_error("echo mismatch from " + c.remote_address().to_string());
      c.close();
      return;
    }
    d.received += static_cast<std::uint32_t>(bytes.size());
    if (d.received < t->message.size()) return;
    auto& loop = t->loops[c.owner_loop().index()];
    loop.traffic_rtt.record(now_ns() - d.sent_ns);
    loop.traffic_msgs.store(loop.traffic_msgs.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
    d.received = 0;
    if (t->traffic)
      send_message(c, t);
    else
      d.looping = false;
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    auto& d = c.data<conn_data>();
    if (d.looping) return on_traffic_data(c, d, bytes);
    const std::string_view expected = std::string_view(t->message).substr(d.received);
    const bool unsolicited = d.sent_ns == 0 || d.echoed;
    if (unsolicited || bytes.size() > expected.size() || !expected.starts_with(bytes)) {
      if (!d.echoed) ++t->mismatched;
      d.echoed = true;
      t->note_error("echo mismatch from " + c.remote_address().to_string());
      c.close();
      return;
    }
    d.received += static_cast<std::uint32_t>(bytes.size());
    if (d.received == t->message.size()) {
      t->loops[c.owner_loop().index()].rtt.record(now_ns() - d.sent_ns);
      d.echoed = true;
      ++t->verified;
    }
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    auto& d = c.data<conn_data>();
    if (!d.opened) return;
    --t->open;
    if (!d.echoed) ++t->echo_lost;
    if (!t->closing && cause != nbio::errc::local_close) {
      ++t->closed_early;
      t->note_error("closed by " + c.remote_address().to_string() + ": " + cause.message());
    }
  }
};

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

std::string host_port(const std::string& host, std::uint16_t port) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Source addresses for N connections to a loopback server: half of the ephemeral port range
// per address, leaving the rest to TIME_WAIT from earlier runs and to other programs.
unsigned source_ips_for(std::uint64_t connections) {
  unsigned low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  const std::uint64_t per_ip = std::max(1u, (high - low + 1) / 2);
  return static_cast<unsigned>(std::min<std::uint64_t>(254, (connections + per_ip - 1) / per_ip));
}

// Once a second, on stderr: in place on a terminal, one line each otherwise.
class progress {
 public:
  explicit progress(const tally& t) : t_(t), start_(steady::now()), tty_(isatty(2) == 1) {}
  void maybe_print(const char* phase) {
    if (steady::now() < next_) return;
    next_ = steady::now() + std::chrono::seconds(1);
    print(phase);
  }
  void print(const char* phase) {
    const double now = seconds_since(start_);
    const std::uint64_t msgs = t_.traffic_msgs();
    const double rate =
        now > last_s_ ? static_cast<double>(msgs - last_msgs_) / (now - last_s_) : 0;
    last_s_ = now;
    last_msgs_ = msgs;
    std::fprintf(stderr,
                 "%s[%5.1fs] %-10s up %llu  failed %llu  echoes verified %llu  msgs/s %.0f  "
                 "closed early %llu%s",
                 tty_ ? "\r" : "", now, phase, static_cast<unsigned long long>(t_.open.load()),
                 static_cast<unsigned long long>(t_.failed.load()),
                 static_cast<unsigned long long>(t_.verified.load()), rate,
                 static_cast<unsigned long long>(t_.closed_early.load()), tty_ ? "\033[K" : "\n");
  }
  void finish(const char* phase) {
    print(phase);
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  const tally& t_;
  steady::time_point start_;
  steady::time_point next_{};
  bool tty_;
  double last_s_ = 0;
  std::uint64_t last_msgs_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nbio TCP client: N connections through the dialer, one echo each"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::uint64_t connections = 1;
  double hold_seconds = 0;
  std::string message = "hello, nbio\n";
  unsigned source_ips = 0;
  std::uint64_t dial_window = 1024;
  std::uint64_t echo_window = 64;
  double traffic_seconds = 0;
  std::uint64_t traffic_window = 1000;
  nbio::engine_options config;
  app.add_option("--host", host, "server address or name")->capture_default_str();
  app.add_option("--port", port, "server port")->required();
  app.add_option("--connections", connections, "connections to open")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 24));
  app.add_option("--hold-seconds", hold_seconds, "how long to hold them open")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--message", message, "bytes sent on each connection and expected back")
      ->check([](const std::string& m) { return m.empty() ? "must not be empty" : ""; });
  app.add_option("--source-ips", source_ips,
                 "spread over source addresses 127.0.0.1..127.0.0.K (loopback servers); 0 derives "
                 "K from --connections")
      ->check(CLI::Range(0, 254));
  app.add_option("--loops", config.loops, "event loop threads; 0 is one per core")
      ->capture_default_str();
  add_backend_flag(app, config);
  app.add_option("--dial-window", dial_window,
                 "connects in flight at most (keeps the server's accept queue from overflowing)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--echo-window", echo_window,
                 "echoes in flight at most (so the round trip is not a queueing time)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--traffic-seconds", traffic_seconds,
                 "echo traffic during the first seconds of the hold (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--traffic-window", traffic_window,
                 "connections that carry the traffic, one message in flight each")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bool use_tls = false;
  app.add_flag("--tls", use_tls, "dial through TLS");
  tls_flags tls;
  tls.add_client(app);
  CLI11_PARSE(app, argc, argv);
  if (!tls.ca.empty() || tls.insecure) use_tls = true;

  const bool loopback_v4 = host.starts_with("127.");
  if (source_ips == 0) source_ips = loopback_v4 ? source_ips_for(connections) : 1;
  if (source_ips > 1 && !loopback_v4) {
    std::fprintf(stderr, "tcp_client: --source-ips needs a 127.x.y.z server address\n");
    return 2;
  }

  raise_fd_limit();
  // Blocked before the loop threads exist (they inherit the mask): the main thread takes the
  // signals with sigtimedwait() and moves on to closing.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  bool stopped = false;
  // Sleeps up to `ms`; true when a stop signal arrived (now or earlier).
  auto stop_requested = [&](long ms) {
    if (stopped) return true;
    const timespec timeout{ms / 1000, (ms % 1000) * 1000000};
    stopped = sigtimedwait(&stop_signals, nullptr, &timeout) > 0;
    return stopped;
  };

  tally t;
  t.message = message;
  nbio::engine eng(config);
  for (std::size_t i = 0; i < eng.loop_count(); ++i)
    t.loops.emplace_back();
  const std::string remote = host_port(host, port);
  nbio::dialer* dialer = nullptr;
  try {
    nbio::dial_options dial;
    if (use_tls) dial.tls = tls.client_context("tcp_client");
    dialer = &eng.make_dialer(client_handler{&t}, dial);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tcp_client: %s\n", e.what());
    return 1;
  }
  auto on_error = [&t](std::error_code ec, const std::string& to) {
    ++t.failed;
    t.note_error("connect " + to + ": " + ec.message());
  };
  std::vector<std::string> sources;
  for (unsigned i = 1; source_ips > 1 && i <= source_ips; ++i)
    sources.push_back("127.0.0." + std::to_string(i) + ":0");

  eng.start();
  progress bar(t);

  // Connect, at most dial_window connects in flight.
  const auto connect_start = steady::now();
  std::uint64_t dialed = 0;
  while (dialed < connections && !stop_requested(0)) {
    const std::uint64_t settled = t.established + t.failed;
    for (; dialed < connections && dialed - settled < dial_window; ++dialed)
      dialer->dial(remote, on_error, sources.empty() ? "" : sources[dialed % sources.size()]);
    bar.maybe_print("connecting");
    if (dialed < connections) stop_requested(1);
  }
  while (t.established + t.failed < dialed && !stop_requested(1))
    bar.maybe_print("connecting");
  const double connect_seconds = seconds_since(connect_start);

  // Echoes, at most echo_window in flight; 10 s at most for all of them.
  const auto echo_start = steady::now();
  auto echo_timed_out = [&] { return seconds_since(echo_start) > 10; };
  std::uint64_t requested = 0;
  for (std::size_t l = 0; l < t.loops.size() && !stopped; ++l) {
    for (const nbio::conn_handle& h : t.loops[l].handles) {
      // A connection lost before its turn is settled early; that only lets one more in.
      while (requested >= t.echoes_settled() + echo_window && !echo_timed_out() &&
             !stop_requested(1))
        bar.maybe_print("echo");
      if (stopped || echo_timed_out()) break;
      ++requested;
      h.dispatch([tp = &t](nbio::conn& c) { client_handler::send_message(c, tp); });
      bar.maybe_print("echo");
    }
  }
  while (t.echoes_settled() < t.established && !echo_timed_out() && !stop_requested(1))
    bar.maybe_print("echo");
  // Requests without a reply by now: a server at its open-files limit leaves connections in
  // its backlog, where the kernel completes the handshake but nobody reads.
  const std::uint64_t unanswered =
      t.established - std::min<std::uint64_t>(t.established, t.echoes_settled());

  // Hold.
  if (!stopped) {
    std::printf("holding %llu connections for %g s\n",
                static_cast<unsigned long long>(t.open.load()), hold_seconds);
    std::fflush(stdout);
  }
  const auto hold_start = steady::now();
  const double idle_seconds = std::max(0.0, hold_seconds - traffic_seconds);
  while (seconds_since(hold_start) < idle_seconds && !stop_requested(100))
    bar.maybe_print("holding");
  // Traffic: traffic_window connections, spread over the loops, each in a closed loop.
  double traffic_elapsed = 0;
  if (traffic_seconds > 0 && !stopped) {
    const auto traffic_start = steady::now();
    t.traffic = true;
    std::uint64_t started = 0;
    for (std::size_t i = 0; started < traffic_window; ++i) {
      bool any = false;
      for (auto& l : t.loops) {
        if (i >= l.handles.size() || started >= traffic_window) continue;
        any = true;
        ++started;
        l.handles[i].dispatch([tp = &t](nbio::conn& c) { client_handler::start_traffic(c, tp); });
      }
      if (!any) break;
    }
    while (seconds_since(traffic_start) < traffic_seconds && !stop_requested(100))
      bar.maybe_print("traffic");
    t.traffic = false;
    traffic_elapsed = seconds_since(traffic_start);
  }
  const std::uint64_t traffic_msgs = t.traffic_msgs();
  bar.finish(stopped ? "stopped" : "closing");

  // Close: graceful shutdown closes each connection after flushing (nothing is queued).
  t.closing = true;
  const auto close_start = steady::now();
  const bool closed_in_time = eng.shutdown(std::chrono::seconds(10));
  const double close_seconds = seconds_since(close_start);

  log_histogram rtt, traffic_rtt;  // the loops are joined: their histograms are final
  for (const auto& l : t.loops) {
    rtt.merge(l.rtt);
    traffic_rtt.merge(l.traffic_rtt);
  }
  auto ms = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  auto count = [](std::uint64_t n) { return static_cast<unsigned long long>(n); };
  std::printf("tcp_client summary (%s, %u source address%s, %zu loops)\n", remote.c_str(),
              source_ips, source_ips == 1 ? "" : "es", eng.loop_count());
  std::printf("  connections requested    %10llu\n", count(connections));
  std::printf("  connections established  %10llu\n", count(t.established));
  std::printf("  connections failed       %10llu\n", count(t.failed));
  std::printf("  connect time             %10.3f s   (%.0f conn/s)\n", connect_seconds,
              connect_seconds > 0 ? static_cast<double>(t.established) / connect_seconds : 0.0);
  std::printf("  echoes verified          %10llu\n", count(t.verified));
  std::printf("  echoes mismatched        %10llu\n", count(t.mismatched));
  std::printf("  echoes unanswered        %10llu\n", count(unanswered));
  std::printf("  echo rtt p50             %10.3f ms\n", ms(rtt.quantile(0.50)));
  std::printf("  echo rtt p99             %10.3f ms\n", ms(rtt.quantile(0.99)));
  std::printf("  echo rtt max             %10.3f ms\n", ms(rtt.max()));
  if (traffic_elapsed > 0) {
    std::printf("  traffic connections      %10llu   (one message in flight each)\n",
                count(std::min<std::uint64_t>(traffic_window, t.established)));
    std::printf("  traffic msgs/s           %10.0f\n",
                static_cast<double>(traffic_msgs) / traffic_elapsed);
    std::printf("  traffic rtt p50          %10.3f ms\n", ms(traffic_rtt.quantile(0.50)));
    std::printf("  traffic rtt p99          %10.3f ms\n", ms(traffic_rtt.quantile(0.99)));
  }
  std::printf("  closed early             %10llu\n", count(t.closed_early));
  std::printf("  close time               %10.3f s%s\n", close_seconds,
              closed_in_time ? "" : "   (deadline passed)");
  if (!t.first_error.empty()) std::printf("  first error              %s\n", t.first_error.c_str());
  std::fflush(stdout);

  const bool ok =
      !stopped && t.established == connections && t.verified == connections && t.closed_early == 0;
  return ok ? 0 : 1;
}
