// soak_client: the client of `make soak` (bench/soak/run.sh). Two groups of connections at once
// against an echo server on a plain port and one on a TLS port, for --duration seconds:
//
//   churn  --churn slots; each connects, sends --churn-messages messages (one in flight, the next
//          --churn-interval-ms after the reply), closes and connects again, all the run;
//   hold   --hold connections that stay open and echo one message every --hold-interval-ms.
//
// --tls-percent of the slots of each group go to the TLS port (the same slots every cycle).
// Every connection sends its own byte stream (soak_pattern.hpp: a seed per connection, sizes of
// 1..--max-size bytes per message) and checks every echoed byte against it on receipt; a wrong,
// missing or extra byte is a mismatch, counted, and closes the connection.
//
// Once a second it samples each --server NAME=PID: VmRSS, open descriptors (/proc/PID/fd) and CPU
// time; it prints a progress line every --progress seconds. Warm-up ends --warmup seconds in, or
// later when both groups first reach full strength (every hold connection open, every churn slot
// started). RSS after warm-up is the mean over the --window seconds after that; RSS at the end
// the mean over the last --window seconds of the load. Then the churn stops, the hold
// connections close, and the servers' descriptors are polled (up to 15 s) until they are back at
// their count before the first connect.
//
// It writes a JSON report (--json: options, summary, every sample) and the samples as columns for
// gnuplot (--data), and exits 0 when every check passed: each server's RSS drift <= --max-drift
// percent, each server's descriptors back within --fd-slack of their baseline, no byte wrong, no
// failed connect, no connection closed by anything but this client, full strength reached.
// 1 when a check failed (the reason on stderr), 2 for a bad command line.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nbio/nbio.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server_sampler.hpp"
#include "soak_pattern.hpp"

namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct soak_options {
  std::string host = "127.0.0.1";
  std::uint16_t plain_port = 0;
  std::uint16_t tls_port = 0;
  std::string tls_ca;  // empty: the TLS connections do not verify the server
  unsigned churn = 5000;
  unsigned hold = 5000;
  unsigned tls_percent = 50;
  unsigned churn_messages = 4;
  unsigned churn_interval_ms = 500;
  unsigned hold_interval_ms = 1000;
  std::size_t max_size = 8192;
  double duration_s = 600;
  double warmup_s = 60;
  double window_s = 10;
  double ramp_rate = 2000;  // first connects per second, both groups together
  unsigned loops = 1;
  std::vector<std::string> servers;  // NAME=PID
  double max_drift_percent = 5;
  unsigned fd_slack = 8;
  double progress_s = 5;
  std::string json_path;
  std::string data_path;
};

enum group : std::uint8_t { churn = 0, hold = 1 };
constexpr const char* group_name[] = {"churn", "hold"};

// Counters written by the loops (relaxed: read by the main thread for progress and at the end,
// after the loops are joined).
struct soak_state {
  const soak_options* o = nullptr;
  nbio::engine* eng = nullptr;
  nbio::dialer* plain = nullptr;
  nbio::dialer* tls = nullptr;
  std::string plain_remote, tls_remote;
  std::uint64_t run_seed = 0;

  std::atomic<bool> stopping{false};  // no new connect, no new message; close at the next step
  std::atomic<bool> engine_stop{false};
  std::atomic<std::uint64_t> dials{0};
  std::atomic<std::uint64_t> connected{0};
  std::atomic<std::uint64_t> dial_failed{0};
  std::atomic<std::uint64_t> up[2]{};
  std::atomic<std::uint64_t> started[2]{};  // slots dialed at least once
  std::atomic<std::uint64_t> cycles{0};     // churn connections that did all their messages
  std::atomic<std::uint64_t> messages{0};   // replies verified whole
  std::atomic<std::uint64_t> bytes{0};      // bytes verified
  std::atomic<std::uint64_t> mismatched_bytes{0};
  std::atomic<std::uint64_t> mismatched_conns{0};
  std::atomic<std::uint64_t> closed_early{0};  // closed by the peer or an error, not by us
  std::atomic<std::uint64_t> left_open{0};     // still open when the engine stopped
  std::mutex error_mutex;
  std::string first_error;
  std::string first_mismatch;

  void note(std::string& slot, std::string what) {
    std::lock_guard lock(error_mutex);
    if (slot.empty()) slot = std::move(what);
  }
  std::uint64_t errors() const { return dial_failed + closed_early + mismatched_conns + left_open; }
};

bool is_tls(const soak_options& o, std::uint32_t slot) {
  return slot % 100 < o.tls_percent;
}

// The handler's conn_data (soak_handler::conn_data names it, so the engine sizes the slot).
struct soak_conn {
  std::uint64_t seed = 0;
  std::uint64_t sent = 0;       // stream bytes written
  std::uint64_t checked = 0;    // stream bytes verified
  std::uint64_t reply_end = 0;  // stream offset where the message in flight ends
  std::uint64_t id = 0;         // the dial's number, named in a mismatch report
  std::uint32_t slot = 0;
  std::uint32_t replies = 0;
  group g = churn;
  bool opened = false;
};

void dial(soak_state& s, group g, std::uint32_t slot);

struct soak_handler {
  using conn_data = soak_conn;
  soak_state* s;

  void send(nbio::conn& c, conn_data& d) {
    const std::size_t size = soak::message_size(d.seed, d.replies, s->o->max_size);
    thread_local std::string buf;
    buf.resize(size);
    soak::fill(d.seed, d.sent, buf.data(), size);
    d.reply_end = d.sent + size;
    d.sent += size;
    if (auto ec = c.write(buf)) c.close(ec);
  }

  void on_open(nbio::conn& c) {
    auto& d = c.data<soak_conn>();
    d.opened = true;
    ++s->up[d.g];
    if (s->stopping) return c.close();
    send(c, d);
  }

  void mismatch(nbio::conn& c, conn_data& d, std::size_t bad, std::uint64_t at, const char* what) {
    s->mismatched_bytes += bad;
    ++s->mismatched_conns;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "%s: %s connection #%llu (%s, slot %u, message %u): %zu byte(s) wrong, the "
                  "first at stream offset %llu",
                  what, group_name[d.g], static_cast<unsigned long long>(d.id),
                  c.has_transport() ? "TLS" : "plain", d.slot, d.replies + 1, bad,
                  static_cast<unsigned long long>(at));
    s->note(s->first_mismatch, line);
    c.close();
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    auto& d = c.data<soak_conn>();
    while (!bytes.empty() && c.is_open()) {
      const std::uint64_t want = d.reply_end - d.checked;
      if (want == 0) return mismatch(c, d, bytes.size(), d.checked, "bytes nobody sent");
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(want, bytes.size()));
      std::size_t first = 0;
      if (std::size_t bad = soak::count_mismatches(d.seed, d.checked, bytes.data(), n, first))
        return mismatch(c, d, bad, d.checked + first, "echo differs");
      d.checked += n;
      s->bytes += n;
      bytes.remove_prefix(n);
      if (d.checked == d.reply_end) on_reply(c, d);
    }
    // A reply completed and closed the connection with bytes left over: nobody sent those.
    if (!bytes.empty() && !c.is_open() && d.checked == d.sent)
      mismatch(c, d, bytes.size(), d.checked, "bytes nobody sent");
  }

  void on_reply(nbio::conn& c, conn_data& d) {
    ++d.replies;
    ++s->messages;
    if (s->stopping) return c.close();
    if (d.g == churn && d.replies >= s->o->churn_messages) {
      ++s->cycles;
      return c.close();
    }
    const unsigned interval = d.g == churn ? s->o->churn_interval_ms : s->o->hold_interval_ms;
    if (interval == 0) return send(c, d);
    c.owner_loop().add_timer(std::chrono::milliseconds(interval), [st = s, h = c.handle()] {
      nbio::conn* c = h.get();  // null once it closed
      if (!c) return;
      if (st->stopping) return c->close();
      soak_handler{st}.send(*c, c->data<soak_conn>());
    });
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    auto& d = c.data<soak_conn>();
    if (!d.opened) return;
    --s->up[d.g];
    if (s->engine_stop) {
      ++s->left_open;
      return;
    }
    if (cause != nbio::errc::local_close) {
      ++s->closed_early;
      s->note(s->first_error, std::string(group_name[d.g]) + " connection closed by " +
                                  c.remote_address().to_string() + ": " + cause.message());
    }
    // A churn slot connects again; so does a hold connection that was lost (counted above), so
    // the group stays at full strength for the rest of the run.
    if (!s->stopping) dial(*s, d.g, d.slot);
  }
};

// One connect of `slot` of group `g`, from the slot's own loop (so its retries and redials stay
// there). A failed connect is counted and tried again 200 ms later, until the run stops.
void dial(soak_state& s, group g, std::uint32_t slot) {
  const bool tls = is_tls(*s.o, slot);
  const std::uint64_t id = s.dials++;
  const int loop = static_cast<int>(slot % s.eng->loop_count());
  (tls ? s.tls : s.plain)
      ->dial(
          tls ? s.tls_remote : s.plain_remote,
          [&s, g, slot, id](nbio::conn& c) {
            ++s.connected;
            auto& d = c.data<soak_conn>();
            d.seed = soak::mix(s.run_seed ^ soak::mix(id));
            d.id = id;
            d.slot = slot;
            d.g = g;
          },
          [&s, g, slot, loop](std::error_code ec, const std::string& to) {
            ++s.dial_failed;
            s.note(s.first_error,
                   std::string(group_name[g]) + " connect " + to + ": " + ec.message());
            if (s.stopping) return;
            s.eng->loop_at(static_cast<std::size_t>(loop)).add_timer(200ms, [&s, g, slot] {
              if (!s.stopping) dial(s, g, slot);
            });
          },
          {}, loop);
}

// --- sampling the servers ---------------------------------------------------------------------

struct server_ref {
  std::string name;
  int pid = 0;
};

struct server_point {
  std::uint64_t rss_kib = 0;
  std::uint64_t fds = 0;
  double cpu_s = 0;
};

struct sample {
  double t = 0;
  std::string phase;
  std::uint64_t hold_up = 0, churn_up = 0, connected = 0, messages = 0, bytes = 0, errors = 0;
  std::vector<server_point> servers;
};

std::uint64_t count_fds(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// False when a server is gone.
bool read_server(int pid, server_point& p) {
  using nbio_load::server_sampler;
  const auto rss = server_sampler::read_rss_kib(pid);
  const auto ticks = server_sampler::read_cpu_ticks(pid);
  if (!rss || !ticks) return false;
  p.rss_kib = *rss;
  p.fds = count_fds(pid);
  p.cpu_s = static_cast<double>(*ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

bool stop_signal_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

double mib(double kib) {
  return kib / 1024.0;
}

// --- the verdict -------------------------------------------------------------------------------

struct server_summary {
  std::string name;
  int pid = 0;
  double rss_before_kib = 0, rss_warm_kib = 0, rss_end_kib = 0, rss_peak_kib = 0,
         rss_after_close_kib = 0;
  double drift_percent = 0;
  std::uint64_t fds_before = 0, fds_peak = 0, fds_end = 0;
  double cpu_s = 0;
};

double mean_rss(const std::vector<sample>& samples, std::size_t server, double from, double to) {
  double sum = 0;
  unsigned n = 0;
  for (const auto& s : samples)
    if (s.phase != "drain" && s.t >= from && s.t < to) {
      sum += static_cast<double>(s.servers[server].rss_kib);
      ++n;
    }
  return n ? sum / n : 0;
}

}  // namespace

int main(int argc, char** argv) {
  soak_options o;
  CLI::App app{
      "soak_client: churning and long-lived echo connections, plain and TLS, for a "
      "while; checks every echoed byte and the servers' RSS and descriptors"};
  app.add_option("--host", o.host, "the servers' address")->capture_default_str();
  app.add_option("--plain-port", o.plain_port, "the plain echo server's port")->required();
  app.add_option("--tls-port", o.tls_port, "the TLS echo server's port")->required();
  app.add_option("--tls-ca", o.tls_ca,
                 "verify the TLS server against this CA (PEM); none: no "
                 "verification");
  app.add_option("--churn", o.churn, "churning connection slots")->capture_default_str();
  app.add_option("--hold", o.hold, "long-lived connections")->capture_default_str();
  app.add_option("--tls-percent", o.tls_percent, "share of each group on the TLS port")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100u));
  app.add_option("--churn-messages", o.churn_messages, "messages per churn connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--churn-interval-ms", o.churn_interval_ms,
                 "churn: from a reply to the next message")
      ->capture_default_str();
  app.add_option("--hold-interval-ms", o.hold_interval_ms, "hold: from a reply to the next message")
      ->capture_default_str();
  app.add_option("--max-size", o.max_size, "message sizes are 1..this many bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("-d,--duration", o.duration_s, "seconds of load, warm-up included")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup_s, "seconds before the RSS reference (at least)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--window", o.window_s,
                 "seconds averaged for the RSS after warm-up and at the end")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--ramp-rate", o.ramp_rate, "first connects per second")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--loops", o.loops, "event loops")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--server", o.servers, "NAME=PID of a server process to sample; repeatable")
      ->required();
  app.add_option("--max-drift", o.max_drift_percent, "RSS growth allowed after warm-up, percent")
      ->capture_default_str();
  app.add_option("--fd-slack", o.fd_slack, "descriptors allowed above the baseline at the end")
      ->capture_default_str();
  app.add_option("--progress", o.progress_s, "seconds between progress lines")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--json", o.json_path, "write the report here")->required();
  app.add_option("--data", o.data_path, "write the samples as gnuplot columns here");
  CLI11_PARSE(app, argc, argv);

  std::vector<server_ref> servers;
  for (const auto& spec : o.servers) {
    const auto eq = spec.find('=');
    int pid = 0;
    if (eq == std::string::npos || std::sscanf(spec.c_str() + eq + 1, "%d", &pid) != 1 ||
        pid <= 0) {
      std::fprintf(stderr, "soak_client: --server %s: expected NAME=PID\n", spec.c_str());
      return 2;
    }
    servers.push_back({spec.substr(0, eq), pid});
  }
  if (o.duration_s < o.warmup_s + 2 * o.window_s) {
    std::fprintf(stderr, "soak_client: --duration %.0f is shorter than --warmup + 2 x --window\n",
                 o.duration_s);
    return 2;
  }
  if (o.churn + o.hold == 0) {
    std::fprintf(stderr, "soak_client: no connections (--churn and --hold are 0)\n");
    return 2;
  }

  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  // Blocked before the loop threads exist (they inherit the mask): polled with sigpending(), so
  // an interrupted run still closes everything and writes its report.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<server_summary> sums(servers.size());
  for (std::size_t i = 0; i < servers.size(); ++i) {
    server_point p;
    if (!read_server(servers[i].pid, p)) {
      std::fprintf(stderr, "soak_client: --server %s=%d: no such process\n",
                   servers[i].name.c_str(), servers[i].pid);
      return 2;
    }
    sums[i].name = servers[i].name;
    sums[i].pid = servers[i].pid;
    sums[i].rss_before_kib = static_cast<double>(p.rss_kib);
    sums[i].fds_before = p.fds;
  }

  soak_state s;
  s.o = &o;
  s.run_seed = static_cast<std::uint64_t>(steady::now().time_since_epoch().count());
  s.plain_remote = o.host + ":" + std::to_string(o.plain_port);
  s.tls_remote = o.host + ":" + std::to_string(o.tls_port);
  nbio::engine eng({.loops = o.loops});
  s.eng = &eng;
  s.plain = &eng.make_dialer(soak_handler{&s});
  s.tls = &eng.make_dialer(
      soak_handler{&s},
      {.tls = nbio::tls::context::client({.verify = !o.tls_ca.empty(), .ca_file = o.tls_ca})});
  eng.start();

  std::vector<sample> samples;
  const auto start = steady::now();
  auto elapsed = [&] { return std::chrono::duration<double>(steady::now() - start).count(); };
  bool interrupted = false;
  bool server_gone = false;
  double warm_end = -1;  // when warm-up ended; < 0: not yet
  double next_sample = 1, next_progress = o.progress_s;
  sample last_printed;

  auto take_sample = [&](const char* phase) {
    sample x;
    x.t = elapsed();
    x.phase = phase;
    x.hold_up = s.up[hold];
    x.churn_up = s.up[churn];
    x.connected = s.connected;
    x.messages = s.messages;
    x.bytes = s.bytes;
    x.errors = s.errors();
    for (const auto& srv : servers) {
      server_point p;
      if (!read_server(srv.pid, p)) server_gone = true;
      x.servers.push_back(p);
    }
    samples.push_back(std::move(x));
  };
  auto print_progress = [&] {
    const sample& x = samples.back();
    const double dt = x.t - last_printed.t;
    std::string srv;
    for (std::size_t i = 0; i < servers.size(); ++i) {
      char part[96];
      std::snprintf(part, sizeof(part), "  %s %.1f MiB %llu fds", servers[i].name.c_str(),
                    mib(static_cast<double>(x.servers[i].rss_kib)),
                    static_cast<unsigned long long>(x.servers[i].fds));
      srv += part;
    }
    std::printf(
        "[%4.0fs] %-7s hold %llu  churn %llu  connects/s %.0f  msgs/s %.0f  MB/s %.1f"
        "  errors %llu %s\n",
        x.t, x.phase.c_str(), static_cast<unsigned long long>(x.hold_up),
        static_cast<unsigned long long>(x.churn_up),
        static_cast<double>(x.connected - last_printed.connected) / dt,
        static_cast<double>(x.messages - last_printed.messages) / dt,
        static_cast<double>(x.bytes - last_printed.bytes) / dt / 1e6,
        static_cast<unsigned long long>(x.errors), srv.c_str());
    std::fflush(stdout);
    last_printed = x;
  };

  // --- the load: ramp, warm-up, steady -------------------------------------------------------
  std::uint64_t dialed[2] = {0, 0};
  const std::uint64_t want[2] = {o.churn, o.hold};
  while (!interrupted && !server_gone) {
    const double t = elapsed();
    if (t >= o.duration_s) break;
    // Ramp: both groups at once, alternately, at --ramp-rate.
    const auto allowed = static_cast<std::uint64_t>(t * o.ramp_rate) + 1;
    while (dialed[churn] + dialed[hold] < std::min(allowed, want[churn] + want[hold])) {
      const group g = (dialed[churn] <= dialed[hold] && dialed[churn] < want[churn]) ||
                              dialed[hold] >= want[hold]
                          ? churn
                          : hold;
      dial(s, g, static_cast<std::uint32_t>(dialed[g]++));
      ++s.started[g];
    }
    const bool full = s.up[hold] == want[hold] && s.started[churn] == want[churn];
    if (warm_end < 0 && full && t >= o.warmup_s) {
      warm_end = t;
      std::printf(
          "[%4.0fs] warm-up over: both groups at full strength; the RSS reference is the "
          "mean of the next %.0f s\n",
          t, o.window_s);
    }
    if (t >= next_sample) {
      take_sample(warm_end < 0 ? "warm-up" : "steady");
      next_sample += 1;
      if (t >= next_progress) {
        print_progress();
        next_progress += o.progress_s;
      }
    }
    if (stop_signal_pending()) interrupted = true;
    std::this_thread::sleep_for(10ms);
  }
  const double load_end = elapsed();

  // --- the drain: churn stops, hold closes, descriptors settle ---------------------------------
  s.stopping = true;
  std::printf("[%4.0fs] load over: churn stops, hold connections close\n", load_end);
  const double drain_deadline = load_end + 15 + (o.hold_interval_ms + o.churn_interval_ms) / 1e3;
  auto clients_done = [&] {
    return s.up[hold] + s.up[churn] == 0 && s.connected + s.dial_failed == s.dials;
  };
  auto fds_back = [&] {
    const sample& x = samples.back();
    for (std::size_t i = 0; i < servers.size(); ++i)
      if (x.servers[i].fds > sums[i].fds_before + o.fd_slack) return false;
    return true;
  };
  double next_drain_sample = load_end + 0.25;
  bool settled = false;
  while (!server_gone && elapsed() < drain_deadline) {
    if (elapsed() >= next_drain_sample) {
      take_sample("drain");
      next_drain_sample += 0.25;
      if (clients_done() && fds_back()) {
        settled = true;
        break;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  // A second look a second later: a descriptor the server closes late is not a leak, one it
  // never closes is.
  if (settled || samples.empty()) {
    std::this_thread::sleep_for(1s);
    take_sample("drain");
  }
  print_progress();
  s.engine_stop = true;
  eng.stop();

  // --- the report ----------------------------------------------------------------------------
  std::vector<std::string> failures;
  const sample& last = samples.back();
  std::uint64_t max_hold_up = 0;
  for (const auto& x : samples)
    max_hold_up = std::max(max_hold_up, x.hold_up);
  const double end_from = load_end - o.window_s;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    server_summary& m = sums[i];
    for (const auto& x : samples) {
      m.rss_peak_kib = std::max(m.rss_peak_kib, static_cast<double>(x.servers[i].rss_kib));
      m.fds_peak = std::max(m.fds_peak, x.servers[i].fds);
    }
    m.fds_end = last.servers[i].fds;
    m.rss_after_close_kib = static_cast<double>(last.servers[i].rss_kib);
    m.cpu_s = last.servers[i].cpu_s - samples.front().servers[i].cpu_s;
    if (warm_end >= 0) {
      m.rss_warm_kib = mean_rss(samples, i, warm_end, warm_end + o.window_s);
      m.rss_end_kib = mean_rss(samples, i, end_from, load_end + 1);
      m.drift_percent = m.rss_warm_kib > 0 ? 100 * (m.rss_end_kib / m.rss_warm_kib - 1) : 0;
      if (m.drift_percent > o.max_drift_percent) {
        char line[200];
        std::snprintf(line, sizeof(line),
                      "%s: RSS grew %.1f%% after warm-up (%.1f -> %.1f MiB; at most %.1f%%)",
                      m.name.c_str(), m.drift_percent, mib(m.rss_warm_kib), mib(m.rss_end_kib),
                      o.max_drift_percent);
        failures.emplace_back(line);
      }
    }
    if (m.fds_end > m.fds_before + o.fd_slack)
      failures.push_back(m.name + ": " + std::to_string(m.fds_end) +
                         " descriptors open after every connection closed, " +
                         std::to_string(m.fds_before) + " before the first (at most " +
                         std::to_string(o.fd_slack) + " more allowed)");
  }
  if (warm_end < 0 || warm_end + o.window_s > end_from)
    failures.push_back("never at full strength in time (at most " + std::to_string(max_hold_up) +
                       " of " + std::to_string(o.hold) + " hold connections up): no RSS reference");
  if (s.mismatched_conns > 0)
    failures.push_back(std::to_string(s.mismatched_bytes) + " byte(s) wrong on " +
                       std::to_string(s.mismatched_conns) +
                       " connection(s); first: " + s.first_mismatch);
  if (s.dial_failed + s.closed_early > 0)
    failures.push_back(std::to_string(s.dial_failed) + " connect(s) failed, " +
                       std::to_string(s.closed_early) + " connection(s) closed unexpectedly; " +
                       "first: " + s.first_error);
  if (s.left_open > 0)
    failures.push_back(std::to_string(s.left_open) +
                       " connection(s) still open 15 s after the "
                       "load stopped");
  if (server_gone) failures.emplace_back("a server process exited during the run");
  if (interrupted) failures.emplace_back("interrupted (SIGINT or SIGTERM)");

  nlohmann::json report;
  report["options"] = {{"duration_s", o.duration_s},
                       {"warmup_s", o.warmup_s},
                       {"window_s", o.window_s},
                       {"churn", o.churn},
                       {"hold", o.hold},
                       {"tls_percent", o.tls_percent},
                       {"churn_messages", o.churn_messages},
                       {"churn_interval_ms", o.churn_interval_ms},
                       {"hold_interval_ms", o.hold_interval_ms},
                       {"max_size", o.max_size},
                       {"loops", o.loops},
                       {"max_drift_percent", o.max_drift_percent},
                       {"fd_slack", o.fd_slack}};
  nlohmann::json jservers = nlohmann::json::array();
  for (const auto& m : sums)
    jservers.push_back({{"name", m.name},
                        {"pid", m.pid},
                        {"rss_before_kib", m.rss_before_kib},
                        {"rss_after_warmup_kib", m.rss_warm_kib},
                        {"rss_end_kib", m.rss_end_kib},
                        {"rss_peak_kib", m.rss_peak_kib},
                        {"rss_after_close_kib", m.rss_after_close_kib},
                        {"rss_drift_percent", m.drift_percent},
                        {"fds_before", m.fds_before},
                        {"fds_peak", m.fds_peak},
                        {"fds_end", m.fds_end},
                        {"cpu_seconds", m.cpu_s}});
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  const double client_cpu_s =
      static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
      static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  report["summary"] = {{"passed", failures.empty()},
                       {"failures", failures},
                       {"load_seconds", load_end},
                       {"warmup_end_s", warm_end},
                       {"connects", s.dials.load()},
                       {"connected", s.connected.load()},
                       {"churn_cycles", s.cycles.load()},
                       {"messages_verified", s.messages.load()},
                       {"bytes_verified", s.bytes.load()},
                       {"mismatched_bytes", s.mismatched_bytes.load()},
                       {"mismatched_connections", s.mismatched_conns.load()},
                       {"connect_failures", s.dial_failed.load()},
                       {"closed_unexpectedly", s.closed_early.load()},
                       {"left_open", s.left_open.load()},
                       {"client_cpu_seconds", client_cpu_s},
                       {"client_max_rss_kib", self.ru_maxrss},
                       {"first_error", s.first_error},
                       {"first_mismatch", s.first_mismatch},
                       {"servers", jservers}};
  nlohmann::json jsamples = nlohmann::json::array();
  for (const auto& x : samples) {
    nlohmann::json js = nlohmann::json::array();
    for (const auto& p : x.servers)
      js.push_back({{"rss_kib", p.rss_kib}, {"fds", p.fds}, {"cpu_s", p.cpu_s}});
    jsamples.push_back({{"t", x.t},
                        {"phase", x.phase},
                        {"hold_up", x.hold_up},
                        {"churn_up", x.churn_up},
                        {"connected", x.connected},
                        {"messages", x.messages},
                        {"bytes", x.bytes},
                        {"errors", x.errors},
                        {"servers", js}});
  }
  report["samples"] = std::move(jsamples);
  if (!(std::ofstream(o.json_path) << report.dump(1) << '\n')) {
    std::fprintf(stderr, "soak_client: cannot write %s\n", o.json_path.c_str());
    failures.push_back("report not written");
  }
  if (!o.data_path.empty()) {
    std::ofstream data(o.data_path);
    // The plot's markers, for bench/soak/plot.gp (read by run.sh).
    data << "# warmup_end_s " << warm_end << "\n# load_end_s " << load_end << '\n';
    data << "# t hold_up churn_up connects_per_s msgs_per_s";
    for (const auto& srv : servers)
      data << ' ' << srv.name << "_rss_mib " << srv.name << "_fds";
    data << '\n';
    const sample* prev = nullptr;
    for (const auto& x : samples) {
      const double dt = prev ? x.t - prev->t : x.t;
      data << x.t << ' ' << x.hold_up << ' ' << x.churn_up << ' '
           << static_cast<double>(x.connected - (prev ? prev->connected : 0)) / dt << ' '
           << static_cast<double>(x.messages - (prev ? prev->messages : 0)) / dt;
      for (const auto& p : x.servers)
        data << ' ' << mib(static_cast<double>(p.rss_kib)) << ' ' << p.fds;
      data << '\n';
      prev = &x;
    }
  }

  if (warm_end >= 0)
    std::printf("\nsoak summary (%.0f s of load, warm-up over at %.0f s)\n", load_end, warm_end);
  else
    std::printf("\nsoak summary (%.0f s of load, never at full strength)\n", load_end);
  std::printf("  %-10s %10s %12s %10s %8s %8s %10s %8s %8s\n", "server", "RSS before",
              "after warm-up", "at end", "drift", "peak", "fds before", "peak", "end");
  for (const auto& m : sums)
    std::printf("  %-10s %7.1f MiB %9.1f MiB %6.1f MiB %7.2f%% %4.1f MiB %10llu %8llu %8llu\n",
                m.name.c_str(), mib(m.rss_before_kib), mib(m.rss_warm_kib), mib(m.rss_end_kib),
                m.drift_percent, mib(m.rss_peak_kib), static_cast<unsigned long long>(m.fds_before),
                static_cast<unsigned long long>(m.fds_peak),
                static_cast<unsigned long long>(m.fds_end));
  std::printf("  connects %llu (churn cycles %llu), messages verified %llu, bytes verified %llu\n",
              static_cast<unsigned long long>(s.dials.load()),
              static_cast<unsigned long long>(s.cycles.load()),
              static_cast<unsigned long long>(s.messages.load()),
              static_cast<unsigned long long>(s.bytes.load()));
  std::printf("  client CPU %.1f s (%.0f%% of a core); server CPU", client_cpu_s,
              100 * client_cpu_s / last.t);
  for (const auto& m : sums)
    std::printf(" %s %.1f s", m.name.c_str(), m.cpu_s);
  std::printf("\n");
  std::printf(
      "  wrong bytes %llu, failed connects %llu, closed unexpectedly %llu, left open %llu\n",
      static_cast<unsigned long long>(s.mismatched_bytes.load()),
      static_cast<unsigned long long>(s.dial_failed.load()),
      static_cast<unsigned long long>(s.closed_early.load()),
      static_cast<unsigned long long>(s.left_open.load()));
  std::fflush(stdout);  // the summary, then the verdict
  for (const auto& f : failures)
    std::fprintf(stderr, "soak: FAILED: %s\n", f.c_str());
  return failures.empty() ? 0 : 1;
}
