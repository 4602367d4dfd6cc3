// echo_load: a closed-loop TCP echo load generator on raw epoll.
//
// Each connection keeps exactly one message in flight: it sends --size bytes, waits until all
// of them came back (checking their content), records the round trip and sends again. The run
// has three phases: connect (every connection, optionally paced by --connect-rate, echoes one
// message and then waits, so connecting does not compete with traffic), warmup (all connections
// start together; traffic, not recorded) and measure (recorded). Latencies go into a log-bucketed
// histogram, so memory does not grow with the run.
//
// Output: a progress line on stderr each second, a short table on stderr at the end and the
// result as one JSON document on stdout (and in --json FILE), so `echo_load ... | jq` works.
//
// Deliberately independent of the nbio library: it measures nbio and its baselines alike.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "endpoint.hpp"
#include "fd_limit.hpp"
#include "latency_histogram.hpp"

namespace {

using json = nlohmann::ordered_json;

constexpr std::int64_t ns_per_s = 1'000'000'000;
// Connections opening at once, where opening lasts until the first echo is back: only that
// proves the server accepted the connection (the kernel completes the handshake on its own).
// Without the cap, a burst of 10,000 connects to a busy server overflows its accept queue
// (4,096 at most) and the dropped handshakes are retried after 1, 3, 7... seconds.
constexpr std::size_t max_opening = 256;
constexpr std::int64_t connect_timeout_ns = 10 * ns_per_s;  // to connect, then to the first echo
constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr int max_events = 1024;

volatile std::sig_atomic_t interrupted = 0;

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * ns_per_s + ts.tv_nsec;
}

double to_us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t connections = 100;
  std::uint32_t size = 64;
  double duration_s = 5.0;
  double warmup_s = 1.0;
  double connect_rate = 0.0;  // connections per second; 0 = as fast as max_opening allows
  std::string json_path;
  int server_pid = 0;      // when set, the server's CPU time over the measure window is reported
  bool busy_poll = false;  // epoll_wait never sleeps: the client's wake-ups leave the latency
};

enum class phase { connect, warmup, measure, done };

// utime + stime of a process in clock ticks, from /proc/PID/stat; -1 when unreadable.
long long cpu_ticks(int pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may contain spaces
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  // Fields after the name: state(3) ... utime(14) stime(15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2)
    return -1;
  return static_cast<long long>(utime + stime);
}

const char* phase_name(phase p) {
  switch (p) {
    case phase::connect:
      return "connect";
    case phase::warmup:
      return "warmup";
    case phase::measure:
      return "measure";
    case phase::done:
      return "done";
  }
  return "?";
}

enum class conn_state : std::uint8_t { pending, connecting, running, dead };

// 24 bytes per connection: the client itself must not be the thing that runs out of memory.
struct conn {
  int fd = -1;
  conn_state state = conn_state::pending;
  bool polling_out = false;    // EPOLLOUT registered: connecting, or a message only partly sent
  bool served = false;         // the first echo came back: the server has accepted it
  std::uint32_t sent = 0;      // bytes of the current message written
  std::uint32_t received = 0;  // bytes of the current message echoed back
  std::int64_t started_ns = 0;
};

struct error_counts {
  std::uint64_t connect = 0;   // refused, unreachable, or not served in time
  std::uint64_t io = 0;        // read or write failed (reset, ...)
  std::uint64_t eof = 0;       // the server closed the connection
  std::uint64_t mismatch = 0;  // echoed bytes differ from the bytes sent

  std::uint64_t total() const { return connect + io + eof + mismatch; }
  json to_json() const {
    return {{"connect", connect}, {"io", io}, {"eof", eof}, {"mismatch", mismatch}};
  }
};

class load_client {
 public:
  load_client(const options& opt, const bench::endpoint& target)
      : opt_(opt), target_(target), conns_(opt.connections), read_buffer_(read_buffer_size) {
    pattern_.resize(opt.size);
    for (std::size_t i = 0; i < pattern_.size(); ++i)
      pattern_[i] = static_cast<char>(i * 31 + 7);
  }

  // Runs all phases; returns false if the client could not start at all.
  bool run();
  json result() const;
  void print_table() const;

 private:
  void start_connects(std::int64_t now);
  void watch(conn& c, std::uint32_t index, std::uint32_t events, int op);
  void on_event(std::uint32_t index, std::uint32_t events);
  void on_connect_done(conn& c, std::uint32_t index);
  void send_message(conn& c, std::uint32_t index, std::int64_t now);
  void continue_write(conn& c, std::uint32_t index);
  void on_readable(conn& c, std::uint32_t index);
  void fail(conn& c, std::uint64_t& counter);
  void expire_connects(std::int64_t now);
  void advance_phase(std::int64_t now);
  void progress(std::int64_t now, bool final_line);
  int wait_timeout_ms(std::int64_t now) const;

  const options& opt_;
  bench::endpoint target_;
  std::vector<conn> conns_;
  std::vector<char> pattern_;
  std::vector<char> read_buffer_;
  int epoll_fd_ = -1;

  phase phase_ = phase::connect;
  std::int64_t start_ns_ = 0;
  std::int64_t connect_done_ns_ = 0;
  std::int64_t measure_start_ns_ = 0;
  std::int64_t measure_end_ns_ = 0;
  std::int64_t next_tick_ns_ = 0;

  std::size_t next_to_connect_ = 0;
  std::size_t opening_ = 0;  // started, first echo not back yet
  std::size_t running_ = 0;
  std::size_t connected_ever_ = 0;

  bench::latency_histogram total_;     // measure phase only
  bench::latency_histogram interval_;  // since the last progress line, any phase
  std::uint64_t messages_ = 0;         // completed in the measure window
  long long server_ticks_start_ = -1;  // server CPU at the start and end of the measure window
  long long server_ticks_end_ = -1;
  std::uint64_t interval_messages_ = 0;
  std::int64_t interval_start_ns_ = 0;
  error_counts errors_;
  bool tty_ = false;
};

bool load_client::run() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    std::perror("echo_load: epoll_create1");
    return false;
  }
  tty_ = isatty(STDERR_FILENO) != 0;
  start_ns_ = now_ns();
  interval_start_ns_ = start_ns_;
  next_tick_ns_ = start_ns_ + ns_per_s;

  std::vector<epoll_event> events(max_events);
  while (phase_ != phase::done) {
    std::int64_t now = now_ns();
    if (phase_ == phase::connect) start_connects(now);
    const int n =
        epoll_wait(epoll_fd_, events.data(), max_events, opt_.busy_poll ? 0 : wait_timeout_ms(now));
    if (n < 0 && errno != EINTR) {
      std::perror("echo_load: epoll_wait");
      break;
    }
    for (int i = 0; i < n; ++i)
      on_event(events[i].data.u32, events[i].events);
    now = now_ns();
    if (now >= next_tick_ns_) {
      if (phase_ == phase::connect) expire_connects(now);
      progress(now, false);
      next_tick_ns_ += ns_per_s;
    }
    advance_phase(now);
  }
  progress(now_ns(), true);

  // Abortive close (RST): no TIME_WAIT on the client side, so back-to-back runs with 19,000
  // connections do not exhaust the ephemeral ports.
  const linger abort_close{1, 0};
  for (conn& c : conns_) {
    if (c.fd < 0) continue;
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
    close(c.fd);
    c.fd = -1;
  }
  close(epoll_fd_);
  return connected_ever_ > 0;
}

int load_client::wait_timeout_ms(std::int64_t now) const {
  std::int64_t until = next_tick_ns_;
  if (phase_ == phase::warmup) until = std::min(until, measure_start_ns_);
  if (phase_ == phase::measure) until = std::min(until, measure_end_ns_);
  std::int64_t ms = (until - now + 999'999) / 1'000'000;
  // Paced connects need a wake-up per connect slot, not per event.
  if (phase_ == phase::connect && opt_.connect_rate > 0) ms = std::min<std::int64_t>(ms, 1);
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000));
}

void load_client::start_connects(std::int64_t now) {
  std::size_t allowed = conns_.size();
  if (opt_.connect_rate > 0) {
    const double elapsed_s = static_cast<double>(now - start_ns_) / ns_per_s;
    allowed = std::min(allowed, static_cast<std::size_t>(opt_.connect_rate * elapsed_s) + 1);
  }
  while (next_to_connect_ < allowed && opening_ < max_opening) {
    const auto index = static_cast<std::uint32_t>(next_to_connect_++);
    conn& c = conns_[index];
    c.fd = socket(target_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      std::fprintf(stderr, "echo_load: socket: %s\n", std::strerror(errno));
      fail(c, errors_.connect);
      continue;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bench::spread_loopback_source(c.fd, target_, index);
    c.started_ns = now;
    const int rc =
        connect(c.fd, reinterpret_cast<const sockaddr*>(&target_.address), target_.length);
    if (rc != 0 && errno != EINPROGRESS) {
      if (errors_.connect == 0)
        std::fprintf(stderr, "echo_load: connect: %s\n", std::strerror(errno));
      fail(c, errors_.connect);
      continue;
    }
    c.state = conn_state::connecting;
    ++opening_;
    watch(c, index, EPOLLOUT, EPOLL_CTL_ADD);
  }
}

void load_client::watch(conn& c, std::uint32_t index, std::uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = index;
  if (epoll_ctl(epoll_fd_, op, c.fd, &ev) != 0) {
    std::fprintf(stderr, "echo_load: epoll_ctl: %s\n", std::strerror(errno));
    fail(c, errors_.io);
    return;
  }
  c.polling_out = (events & EPOLLOUT) != 0;
}

void load_client::on_event(std::uint32_t index, std::uint32_t events) {
  conn& c = conns_[index];
  if (c.state == conn_state::connecting) {
    on_connect_done(c, index);
    return;
  }
  if (c.state != conn_state::running) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, index);
  if (c.state == conn_state::running && (events & EPOLLOUT) && c.polling_out) {
    continue_write(c, index);
  }
}

void load_client::on_connect_done(conn& c, std::uint32_t index) {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    if (errors_.connect == 0)
      std::fprintf(stderr, "echo_load: connect: %s\n", std::strerror(error));
    fail(c, errors_.connect);
    return;
  }
  c.state = conn_state::running;
  ++running_;
  ++connected_ever_;
  watch(c, index, EPOLLIN, EPOLL_CTL_MOD);
  if (c.state == conn_state::running) send_message(c, index, now_ns());
}

void load_client::send_message(conn& c, std::uint32_t index, std::int64_t now) {
  c.sent = 0;
  c.received = 0;
  c.started_ns = now;
  continue_write(c, index);
}

void load_client::continue_write(conn& c, std::uint32_t index) {
  while (c.sent < opt_.size) {
    const ssize_t n = send(c.fd, pattern_.data() + c.sent, opt_.size - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<std::uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.polling_out) watch(c, index, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      return;
    }
    fail(c, errors_.io);
    return;
  }
  if (c.polling_out) watch(c, index, EPOLLIN, EPOLL_CTL_MOD);
}

void load_client::on_readable(conn& c, std::uint32_t index) {
  // Ask for no more than the rest of the message: with one message in flight, anything beyond
  // it would be a server bug, and it then shows up as a mismatch on the next message.
  const std::size_t want = std::min<std::size_t>(opt_.size - c.received, read_buffer_.size());
  const ssize_t n = recv(c.fd, read_buffer_.data(), want, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    fail(c, errors_.io);
    return;
  }
  if (n == 0) {
    fail(c, errors_.eof);
    return;
  }
  const auto got = static_cast<std::uint32_t>(n);
  if (c.received + got > c.sent ||
      std::memcmp(read_buffer_.data(), pattern_.data() + c.received, got) != 0) {
    fail(c, errors_.mismatch);
    return;
  }
  c.received += got;
  if (c.received < opt_.size) return;

  const std::int64_t now = now_ns();
  if (!c.served) {  // the connect phase's first echo: not a sample, and traffic starts later
    c.served = true;
    --opening_;
    if (phase_ == phase::connect) return;
  }
  const auto latency = static_cast<std::uint64_t>(now - c.started_ns);
  interval_.record(latency);
  ++interval_messages_;
  // By timestamp rather than by phase_, which advances only after the epoll batch.
  const bool measuring = phase_ == phase::warmup || phase_ == phase::measure;
  if (measuring && now >= measure_start_ns_ && now < measure_end_ns_) {
    total_.record(latency);
    ++messages_;
  }
  send_message(c, index, now);
}

void load_client::fail(conn& c, std::uint64_t& counter) {
  ++counter;
  if (!c.served && (c.state == conn_state::connecting || c.state == conn_state::running)) {
    --opening_;
  }
  if (c.state == conn_state::running) --running_;
  if (c.fd >= 0) close(c.fd);  // close() also removes it from the epoll set
  c.fd = -1;
  c.state = conn_state::dead;
}

void load_client::expire_connects(std::int64_t now) {
  for (conn& c : conns_) {
    const bool opening = c.state == conn_state::connecting || c.state == conn_state::running;
    if (opening && !c.served && now - c.started_ns > connect_timeout_ns) {
      fail(c, errors_.connect);
    }
  }
}

void load_client::advance_phase(std::int64_t now) {
  if (interrupted) {  // report what was measured so far (nothing unless measuring)
    measure_end_ns_ = phase_ == phase::measure ? std::min(measure_end_ns_, now) : measure_start_ns_;
    phase_ = phase::done;
    return;
  }
  switch (phase_) {
    case phase::connect:
      if (next_to_connect_ < conns_.size() || opening_ > 0) return;
      connect_done_ns_ = now;
      if (running_ == 0) {
        phase_ = phase::done;
        return;
      }
      phase_ = phase::warmup;
      measure_start_ns_ = now + static_cast<std::int64_t>(opt_.warmup_s * ns_per_s);
      measure_end_ns_ = measure_start_ns_ + static_cast<std::int64_t>(opt_.duration_s * ns_per_s);
      for (std::uint32_t i = 0; i < conns_.size(); ++i) {
        if (conns_[i].state == conn_state::running) send_message(conns_[i], i, now_ns());
      }
      return;
    case phase::warmup:
      if (now >= measure_start_ns_) {
        phase_ = phase::measure;
        if (opt_.server_pid) server_ticks_start_ = cpu_ticks(opt_.server_pid);
      }
      break;
    case phase::measure:
      if (now >= measure_end_ns_) {
        phase_ = phase::done;
        if (opt_.server_pid) server_ticks_end_ = cpu_ticks(opt_.server_pid);
      }
      break;
    case phase::done:
      return;
  }
  if (running_ == 0) {
    measure_end_ns_ = std::min(measure_end_ns_, now);
    phase_ = phase::done;
  }
}

void load_client::progress(std::int64_t now, bool final_line) {
  const double elapsed_s = static_cast<double>(now - start_ns_) / ns_per_s;
  const double interval_s =
      std::max(1e-9, static_cast<double>(now - interval_start_ns_) / ns_per_s);
  std::fprintf(
      stderr,
      "%s[%6.1fs] %-7s conns %zu/%zu  msgs/s %9.0f  p50 %8.1fus  p99 %8.1fus  errors %llu%s",
      tty_ ? "\r\033[K" : "", elapsed_s, phase_name(phase_), running_, conns_.size(),
      interval_messages_ / interval_s, to_us(interval_.quantile(0.50)),
      to_us(interval_.quantile(0.99)), static_cast<unsigned long long>(errors_.total()),
      tty_ && !final_line ? "" : "\n");
  std::fflush(stderr);
  interval_.clear();
  interval_messages_ = 0;
  interval_start_ns_ = now;
}

json load_client::result() const {
  const double measured_s =
      measure_end_ns_ > measure_start_ns_
          ? static_cast<double>(measure_end_ns_ - measure_start_ns_) / ns_per_s
          : 0.0;
  const double rate = measured_s > 0 ? messages_ / measured_s : 0.0;
  // Server CPU over the measure window: with one load core the client often limits msgs/s,
  // so messages per server CPU-second is the figure that compares servers.
  double server_cpu_s = -1;
  if (server_ticks_start_ >= 0 && server_ticks_end_ >= server_ticks_start_)
    server_cpu_s = static_cast<double>(server_ticks_end_ - server_ticks_start_) /
                   static_cast<double>(sysconf(_SC_CLK_TCK));
  const double server_cpu_pct =
      server_cpu_s >= 0 && measured_s > 0 ? 100.0 * server_cpu_s / measured_s : -1.0;
  const double per_cpu_s = server_cpu_s > 0 ? messages_ / server_cpu_s : -1.0;
  return {
      {"server_cpu_pct", server_cpu_pct},
      {"msgs_per_server_cpu_s", per_cpu_s},
      {"host", opt_.host},
      {"port", opt_.port},
      {"connections", opt_.connections},
      {"connected", connected_ever_},
      {"size", opt_.size},
      {"warmup_s", opt_.warmup_s},
      {"duration_s", measured_s},
      {"connect_s",
       connect_done_ns_ > 0 ? static_cast<double>(connect_done_ns_ - start_ns_) / ns_per_s : 0.0},
      {"messages", messages_},
      {"msgs_per_sec", rate},
      {"bytes_per_sec", rate * opt_.size},
      {"p50_us", to_us(total_.quantile(0.50))},
      {"p90_us", to_us(total_.quantile(0.90))},
      {"p99_us", to_us(total_.quantile(0.99))},
      {"p999_us", to_us(total_.quantile(0.999))},
      {"max_us", to_us(total_.max())},
      {"mean_us", total_.mean() / 1000.0},
      {"errors", errors_.total()},
      {"error_detail", errors_.to_json()},
  };
}

void load_client::print_table() const {
  const json r = result();
  std::fprintf(stderr,
               "\n  target        %s:%u\n"
               "  connections   %zu (%zu connected in %.2f s)\n"
               "  message size  %u B\n"
               "  measured      %.2f s after %.2f s warmup\n"
               "  messages      %llu\n"
               "  msgs/s        %.0f\n"
               "  latency (us)  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n"
               "  errors        %llu (connect %llu, io %llu, eof %llu, mismatch %llu)\n\n",
               opt_.host.c_str(), opt_.port, opt_.connections, connected_ever_,
               r["connect_s"].get<double>(), opt_.size, r["duration_s"].get<double>(),
               opt_.warmup_s, static_cast<unsigned long long>(messages_),
               r["msgs_per_sec"].get<double>(), r["p50_us"].get<double>(),
               r["p99_us"].get<double>(), r["p999_us"].get<double>(), r["max_us"].get<double>(),
               r["mean_us"].get<double>(), static_cast<unsigned long long>(errors_.total()),
               static_cast<unsigned long long>(errors_.connect),
               static_cast<unsigned long long>(errors_.io),
               static_cast<unsigned long long>(errors_.eof),
               static_cast<unsigned long long>(errors_.mismatch));
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Closed-loop TCP echo load: one message in flight per connection."};
  app.add_option("--host", opt.host, "server address")->capture_default_str();
  app.add_option("--port", opt.port, "server port")->required();
  app.add_option("--connections", opt.connections, "concurrent connections")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--size", opt.size, "message size in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{1} << 24));
  app.add_option("--duration", opt.duration_s, "measured seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--server-pid", opt.server_pid,
                 "PID of the server: report its CPU use over the measured window");
  app.add_option("--warmup", opt.warmup_s, "unrecorded seconds after connecting")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--connect-rate", opt.connect_rate, "new connections per second (0: unpaced)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", opt.json_path, "also write the JSON result to this file");
  app.add_flag("--busy-poll", opt.busy_poll, "poll without sleeping (uses the client's CPU fully)");
  CLI11_PARSE(app, argc, argv);

  const rlim_t fd_limit = bench::raise_fd_limit();
  if (fd_limit < opt.connections + 16) {
    std::fprintf(stderr, "echo_load: %zu connections need more than the open-files limit %llu\n",
                 opt.connections, static_cast<unsigned long long>(fd_limit));
    return 2;
  }
  std::string error;
  const auto target = bench::resolve_endpoint(opt.host, opt.port, &error);
  if (!target) {
    std::fprintf(stderr, "echo_load: %s: %s\n", opt.host.c_str(), error.c_str());
    return 2;
  }

  struct sigaction on_interrupt {};
  on_interrupt.sa_handler = [](int) { interrupted = 1; };
  sigaction(SIGINT, &on_interrupt, nullptr);
  sigaction(SIGTERM, &on_interrupt, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  load_client client(opt, *target);
  const bool ran = client.run();
  client.print_table();
  const json result = client.result();
  std::printf("%s\n", result.dump(2).c_str());
  std::fflush(stdout);
  if (!opt.json_path.empty()) {
    std::ofstream file(opt.json_path);
    file << result.dump(2) << '\n';
    if (!file) {
      std::fprintf(stderr, "echo_load: cannot write %s\n", opt.json_path.c_str());
      return 1;
    }
  }
  return ran && result["messages"].get<std::uint64_t>() > 0 ? 0 : 1;
}
