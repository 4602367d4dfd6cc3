// tcp_idle: what an idle TCP connection costs a server, in resident memory.
//
// Samples the server's VmRSS (/proc/PID/status), opens --connections connections to it, and on
// each sends one byte and waits for its echo, so the server has surely accepted, registered and
// served every connection before the second sample; the connections then sit idle. After
// --settle seconds it samples VmRSS until two samples 250 ms apart agree and reports
// (after - before) / connections. The byte is echoed on purpose: a server that keeps a read
// buffer per connection after its first read shows it here.
//
// Output: progress and a short table on stderr, one JSON document on stdout (and in --json FILE).
// Blocking sockets, one connection at a time: simple, and fast enough on loopback (15,000
// connections take about a second). No nbio dependency.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "endpoint.hpp"
#include "fd_limit.hpp"

namespace {

using json = nlohmann::ordered_json;
using namespace std::chrono_literals;

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t connections = 15000;
  int server_pid = 0;
  double settle_s = 2.0;
  double timeout_s = 5.0;  // per connect and per echo
  std::string json_path;
};

// The server's resident set in KiB, or nullopt if its /proc entry cannot be read.
std::optional<long> read_vm_rss_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return std::nullopt;
}

// Samples until two consecutive samples agree (the server has finished reacting), at most 10 s.
std::optional<long> stable_vm_rss_kb(int pid) {
  std::optional<long> last = read_vm_rss_kb(pid);
  for (int i = 0; i < 40 && last; ++i) {
    std::this_thread::sleep_for(250ms);
    const std::optional<long> next = read_vm_rss_kb(pid);
    if (next == last) break;
    last = next;
  }
  return last;
}

// Connects, sends one byte and waits for it to come back. Returns the socket, or -1 with the
// reason in *error.
int open_served_connection(const bench::endpoint& target, std::size_t index, double timeout_s,
                           std::string* error) {
  const int fd = socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  timeval timeout{};
  timeout.tv_sec = static_cast<time_t>(timeout_s);
  timeout.tv_usec =
      static_cast<suseconds_t>((timeout_s - static_cast<double>(timeout.tv_sec)) * 1e6);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);  // bounds connect() too
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bench::spread_loopback_source(fd, target, index);

  const char probe = 'x';
  char echoed = 0;
  const char* step = "connect";
  bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&target.address), target.length) == 0;
  if (ok) {
    step = "send";
    ok = send(fd, &probe, 1, MSG_NOSIGNAL) == 1;
  }
  if (ok) {
    step = "echo";
    ssize_t n;
    do {
      n = recv(fd, &echoed, 1, 0);
    } while (n < 0 && errno == EINTR);
    ok = n == 1 && echoed == probe;
    if (n == 0) errno = ECONNRESET;
    if (n == 1 && echoed != probe) errno = EPROTO;
  }
  if (!ok) {
    *error = std::string(step) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Server RSS per idle TCP connection."};
  app.add_option("--host", opt.host, "server address")->capture_default_str();
  app.add_option("--port", opt.port, "server port (an echo server)")->required();
  app.add_option("--server-pid", opt.server_pid, "PID of the server process")->required();
  app.add_option("--connections", opt.connections, "idle connections to open")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--settle", opt.settle_s, "seconds to wait before sampling RSS again")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout", opt.timeout_s, "seconds allowed per connect and per echo")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--json", opt.json_path, "also write the JSON result to this file");
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGPIPE, SIG_IGN);
  const rlim_t fd_limit = bench::raise_fd_limit();
  if (fd_limit < opt.connections + 16) {
    std::fprintf(stderr, "tcp_idle: %zu connections need more than the open-files limit %llu\n",
                 opt.connections, static_cast<unsigned long long>(fd_limit));
    return 2;
  }
  std::string error;
  const auto target = bench::resolve_endpoint(opt.host, opt.port, &error);
  if (!target) {
    std::fprintf(stderr, "tcp_idle: %s: %s\n", opt.host.c_str(), error.c_str());
    return 2;
  }
  const std::optional<long> before = stable_vm_rss_kb(opt.server_pid);
  if (!before) {
    std::fprintf(stderr, "tcp_idle: cannot read VmRSS of pid %d\n", opt.server_pid);
    return 2;
  }

  std::vector<int> fds;
  fds.reserve(opt.connections);
  const auto start = std::chrono::steady_clock::now();
  auto next_report = start + 1s;
  while (fds.size() < opt.connections) {
    const int fd = open_served_connection(*target, fds.size(), opt.timeout_s, &error);
    if (fd < 0) {
      std::fprintf(stderr, "tcp_idle: connection %zu: %s\n", fds.size() + 1, error.c_str());
      break;
    }
    fds.push_back(fd);
    if (std::chrono::steady_clock::now() >= next_report) {
      std::fprintf(stderr, "tcp_idle: %zu/%zu connections served\n", fds.size(), opt.connections);
      next_report += 1s;
    }
  }
  const double connect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::this_thread::sleep_for(std::chrono::duration<double>(opt.settle_s));
  const std::optional<long> after = stable_vm_rss_kb(opt.server_pid);

  const std::size_t established = fds.size();
  const bool complete = established == opt.connections && after.has_value();
  const double per_connection =
      after && established > 0 ? static_cast<double>(*after - *before) * 1024.0 / established : 0.0;
  const json result = {
      {"server_pid", opt.server_pid},
      {"host", opt.host},
      {"port", opt.port},
      {"connections", opt.connections},
      {"established", established},
      {"connect_s", connect_s},
      {"settle_s", opt.settle_s},
      {"rss_before_kb", *before},
      {"rss_after_kb", after.value_or(0)},
      {"bytes_per_connection", per_connection},
      {"errors", opt.connections - established},
  };

  const linger abort_close{1, 0};  // RST: leave no TIME_WAIT behind on either side
  for (const int fd : fds) {
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
    close(fd);
  }

  std::fprintf(stderr,
               "\n  server pid            %d\n"
               "  idle connections      %zu of %zu (opened in %.2f s)\n"
               "  server VmRSS before   %ld KiB\n"
               "  server VmRSS after    %ld KiB\n"
               "  bytes per connection  %.0f\n\n",
               opt.server_pid, established, opt.connections, connect_s, *before, after.value_or(0),
               per_connection);
  std::printf("%s\n", result.dump(2).c_str());
  std::fflush(stdout);
  if (!opt.json_path.empty()) {
    std::ofstream file(opt.json_path);
    file << result.dump(2) << '\n';
    if (!file) {
      std::fprintf(stderr, "tcp_idle: cannot write %s\n", opt.json_path.c_str());
      return 1;
    }
  }
  return complete ? 0 : 1;
}
