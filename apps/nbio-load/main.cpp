// nbio-load: a load generator on the nbio engine's dialer.
//
//   nbio-load --mode idle     --port P -c 15000 --processes 2 -d 10 --server-pid PID
//   nbio-load --mode tcp-echo --port P -c 1000 --in-flight 200 -s 64 -d 10 --json out.json
//   nbio-load --mode tls-handshake --tls --tls-insecure --port P -c 50 -d 10 [--tls-resume]
//
// --tls puts every connection through a TLS client handshake first (nbio::tls); the result then
// counts handshakes and resumed ones. --mode tls-handshake measures handshakes: each of the -c
// connections connects, handshakes, sends one "GET --path" with Connection: close, reads the
// response, closes and dials again. One GET rather than none: under TLS 1.3 the session ticket
// comes after the handshake, so a client that closed at on_open would rarely have one to resume
// with (and the server would write it into a closed socket); a server is also measured on what
// it serves, as wrk -H "Connection: close" would. The latency is the whole cycle's (connect,
// handshake, request, response).
//
// The parent forks --processes workers (before any engine or thread exists), each with its share
// of the connections, and merges what they report. A live line goes to stderr once a second
// (connections up, connects/s, msgs/s, errors); at the end a table goes to stderr and a JSON
// document to stdout (or --json FILE). With --server-pid the parent samples the server's VmRSS
// and CPU from /proc once a second, and the result reports RSS per connection, CPU % and
// msgs/s per server CPU % (the efficiency figure Go nbio's benchmark calls EER).
//
// With --ramp-first each worker opens all its connections and reports so; once every worker has,
// the parent sends them SIGUSR1 (the go) and the traffic (and --duration) starts everywhere at
// once, so msgs/s and latency are measured with every connection held.
//
// With --plot FILE.svg the parent also records one sample a second (connections up, msgs/s,
// server RSS) and at the end has gnuplot draw them; a failed plot is one line on stderr, after
// the results, and makes the exit status 1.
//
// Exit status: 0 when every connection was established and none was lost early (and the plot,
// if asked for, was written); 1 otherwise (an unreachable target among them, reported in one
// line); 2 for a bad command line.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <system_error>
#include <vector>

#include "load_client.hpp"
#include "load_options.hpp"
#include "load_result.hpp"
#include "plot.hpp"
#include "process_pool.hpp"
#include "server_sampler.hpp"

namespace {

using namespace nbio_load;

bool stop_signal_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

// --ramp-first: the parent sends SIGUSR1 once every worker has opened its connections.
bool go_signal_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGUSR1) == 1;
}

// The worker process: its share of the load, progress and result as JSON lines on `fd`.
int worker_main(const load_options& all, unsigned index, int fd) {
  load_client client(all.worker_share(index));
  const load_result r = client.run(
      [fd](const load_progress& p) {
        write_json_line(fd, {{"type", "progress"}, {"progress", p.to_json()}});
      },
      stop_signal_pending, go_signal_pending);
  return write_json_line(fd, {{"type", "result"}, {"result", r.to_json()}}) ? 0 : 1;
}

// The live line: on a terminal in place, otherwise one line a second.
class live_line {
 public:
  live_line() : tty_(isatty(2) == 1), last_{std::chrono::steady_clock::now(), 0, 0} {}

  void print(const load_progress& p, const server_sampler& server) {
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last_.at).count();
    const double connects =
        dt > 0 ? static_cast<double>(p.established - last_.established) / dt : 0;
    const double msgs = dt > 0 ? static_cast<double>(p.messages - last_.messages) / dt : 0;
    last_ = {now, p.established, p.messages};
    ++seconds_;
    char rss[48] = "";
    if (server.enabled())
      std::snprintf(rss, sizeof(rss), "  server RSS %.1f MiB", server.rss_kib_now() / 1024.0);
    std::fprintf(stderr, "%s[%4us] up %llu  connects/s %.0f  msgs/s %.0f  errors %llu%s%s",
                 tty_ ? "\r" : "", seconds_, static_cast<unsigned long long>(p.up), connects, msgs,
                 static_cast<unsigned long long>(p.errors), rss, tty_ ? "\033[K" : "\n");
  }
  void finish() {
    if (tty_ && seconds_ > 0) std::fputc('\n', stderr);
  }

 private:
  struct mark {
    std::chrono::steady_clock::time_point at;
    std::uint64_t established = 0;
    std::uint64_t messages = 0;
  };
  bool tty_;
  mark last_;
  unsigned seconds_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  parse_outcome parsed = parse_load_options(argc, argv, system_limits::current());
  if (!parsed.options) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exit_code;
  }
  const load_options& o = *parsed.options;

  // Blocked here, before the workers and their threads exist (all inherit the mask): the
  // parent and the workers poll for them with sigpending() and end the run cleanly.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  server_sampler server(o.server_pids);
  if (server.enabled()) server.sample();  // the baseline, before the first connect

  process_pool::outcome out;
  std::vector<plot_sample> samples;  // --plot: one a second
  try {
    process_pool pool(o.processes,
                      [&o](unsigned index, int fd) { return worker_main(o, index, fd); });
    live_line line;
    // Connect timeout, duration, drain and close, with room to spare: a stuck worker is killed.
    const double ramp_s = o.ramp_first ? o.ramp_timeout_s : 0;
    const auto deadline =
        std::chrono::milliseconds(o.connect_timeout_ms) +
        std::chrono::milliseconds(static_cast<long long>((ramp_s + o.duration_s) * 1000)) +
        std::chrono::seconds(15);
    const auto started = std::chrono::steady_clock::now();
    auto last_tick = started;
    std::uint64_t last_messages = 0;
    out = pool.run(
        [&](const load_progress& p) {
          if (server.enabled()) server.sample();
          line.print(p, server);
          if (o.plot_path.empty()) return;
          const auto now = std::chrono::steady_clock::now();
          const double dt = std::chrono::duration<double>(now - last_tick).count();
          plot_sample s;
          s.elapsed_s = std::chrono::duration<double>(now - started).count();
          s.up = p.up;
          s.msgs_per_s = dt > 0 ? static_cast<double>(p.messages - last_messages) / dt : 0;
          if (server.enabled()) s.rss_mib = static_cast<double>(server.rss_kib_now()) / 1024.0;
          samples.push_back(s);
          last_tick = now;
          last_messages = p.messages;
        },
        stop_signal_pending, deadline);
    line.finish();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  if (server.enabled() && !server.sample())
    std::fprintf(stderr, "nbio-load: a --server-pid process is gone; its last samples are used\n");
  const server_usage usage = server.usage();
  const load_result& r = out.result;

  std::fputs(report_table(o, r, usage).c_str(), stderr);
  const std::string json = report_json(o, r, usage).dump(2);
  if (o.json_path.empty()) {
    std::printf("%s\n", json.c_str());
  } else if (!(std::ofstream(o.json_path) << json << '\n')) {
    std::fprintf(stderr, "nbio-load: cannot write %s\n", o.json_path.c_str());
    return 1;
  }

  // The plot comes after the results, so a missing gnuplot cannot hide them.
  bool plot_failed = false;
  if (!o.plot_path.empty()) {
    const std::string title = "nbio-load " + o.mode + ": " + std::to_string(o.connections) +
                              " connections, " + std::to_string(o.processes) + " process(es)";
    if (std::string err = write_plot(samples, o.plot_path, title); !err.empty()) {
      std::fprintf(stderr, "nbio-load: --plot %s not written: %s\n", o.plot_path.c_str(),
                   err.c_str());
      plot_failed = true;
    } else {
      std::fprintf(stderr, "nbio-load: plot written to %s\n", o.plot_path.c_str());
    }
  }

  if (out.timed_out || out.failed > 0) {
    std::fprintf(stderr, "nbio-load: %u of %u worker(s) failed%s\n", out.failed, o.processes,
                 out.timed_out ? " (killed at the deadline)" : "");
    return 1;
  }
  if (r.established == 0) {
    std::fprintf(stderr, "nbio-load: target unreachable, 0 of %llu connections established (%s)\n",
                 static_cast<unsigned long long>(r.connections),
                 r.first_error.empty() ? "no error reported" : r.first_error.c_str());
    return 1;
  }
  // tls-handshake: every slot connects over and over; none may fail or lose its reply.
  if (o.reconnects()) return r.failed == 0 && r.closed_early == 0 && !plot_failed ? 0 : 1;
  return r.established == r.connections && r.closed_early == 0 && !plot_failed ? 0 : 1;
}
