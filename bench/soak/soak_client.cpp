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

#include "soak_pattern.hpp"
#include "soak_report.hpp"

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

// Shared by the handlers of every loop. The counters are atomics (any loop may count) read by
// the main thread once a second and, final, after the loops are joined.
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

bool stop_signal_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
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

  std::vector<soak::server_ref> servers;
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

  std::vector<soak::server_point> before(servers.size());
  for (std::size_t i = 0; i < servers.size(); ++i)
    if (!soak::read_server(servers[i].pid, before[i])) {
      std::fprintf(stderr, "soak_client: --server %s=%d: no such process\n",
                   servers[i].name.c_str(), servers[i].pid);
      return 2;
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

  soak::run_facts facts{.window_s = o.window_s,
                        .max_drift_percent = o.max_drift_percent,
                        .fd_slack = o.fd_slack,
                        .hold = o.hold};
  std::vector<soak::sample> samples;
  const auto start = steady::now();
  auto elapsed = [&] { return std::chrono::duration<double>(steady::now() - start).count(); };
  auto take_sample = [&](const char* phase) {
    soak::sample x;
    x.t = elapsed();
    x.phase = phase;
    x.hold_up = s.up[hold];
    x.churn_up = s.up[churn];
    x.connected = s.connected;
    x.messages = s.messages;
    x.bytes = s.bytes;
    x.errors = s.errors();
    x.servers.resize(servers.size());
    for (std::size_t i = 0; i < servers.size(); ++i)
      if (!soak::read_server(servers[i].pid, x.servers[i])) facts.server_gone = true;
    samples.push_back(std::move(x));
  };
  soak::sample last_printed;
  auto progress = [&] {
    soak::print_progress(servers, samples.back(), last_printed);
    last_printed = samples.back();
  };

  // --- the load: ramp, warm-up, steady -------------------------------------------------------
  std::uint64_t dialed[2] = {0, 0};
  const std::uint64_t want[2] = {o.churn, o.hold};
  double next_sample = 1, next_progress = o.progress_s;
  while (!facts.interrupted && !facts.server_gone) {
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
    if (facts.warm_end < 0 && full && t >= o.warmup_s) {
      facts.warm_end = t;
      std::printf(
          "[%4.0fs] warm-up over: both groups at full strength; the RSS reference is the "
          "mean of the next %.0f s\n",
          t, o.window_s);
    }
    if (t >= next_sample) {
      take_sample(facts.warm_end < 0 ? "warm-up" : "steady");
      next_sample += 1;
      if (t >= next_progress) {
        progress();
        next_progress += o.progress_s;
      }
    }
    if (stop_signal_pending()) facts.interrupted = true;
    std::this_thread::sleep_for(10ms);
  }
  facts.load_end = elapsed();

  // --- the drain: churn stops, hold closes, descriptors settle ---------------------------------
  s.stopping = true;
  std::printf("[%4.0fs] load over: churn stops, hold connections close\n", facts.load_end);
  const double drain_deadline =
      facts.load_end + 15 + (o.hold_interval_ms + o.churn_interval_ms) / 1e3;
  auto clients_done = [&] {
    return s.up[hold] + s.up[churn] == 0 && s.connected + s.dial_failed == s.dials;
  };
  auto fds_back = [&] {
    for (std::size_t i = 0; i < servers.size(); ++i)
      if (samples.back().servers[i].fds > before[i].fds + o.fd_slack) return false;
    return true;
  };
  double next_drain_sample = facts.load_end + 0.25;
  bool settled = false;
  while (!facts.server_gone && elapsed() < drain_deadline) {
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
  progress();
  s.engine_stop = true;
  eng.stop();  // joins the loops: the counters are final

  // --- the verdict and the report ------------------------------------------------------------
  soak::client_totals totals;
  totals.connects = s.dials;
  totals.connected = s.connected;
  totals.churn_cycles = s.cycles;
  totals.messages = s.messages;
  totals.bytes = s.bytes;
  totals.mismatched_bytes = s.mismatched_bytes;
  totals.mismatched_conns = s.mismatched_conns;
  totals.connect_failures = s.dial_failed;
  totals.closed_early = s.closed_early;
  totals.left_open = s.left_open;
  totals.first_error = s.first_error;
  totals.first_mismatch = s.first_mismatch;
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  totals.cpu_s = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                 static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  totals.max_rss_kib = static_cast<std::uint64_t>(self.ru_maxrss);

  soak::verdict v = soak::judge(servers, before, samples, totals, facts);
  const nlohmann::json options = {{"duration_s", o.duration_s},
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
  if (!(std::ofstream(o.json_path)
        << soak::report_json(options, v, totals, facts, samples).dump(1) << '\n'))
    v.failures.push_back("cannot write " + o.json_path);
  if (!o.data_path.empty() && !soak::write_data(o.data_path, servers, samples, facts))
    v.failures.push_back("cannot write " + o.data_path);
  soak::print_summary(v, totals, facts, samples.back().t);
  return v.failures.empty() ? 0 : 1;
}
