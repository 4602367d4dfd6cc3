// Integration, heavy: http_hello under 10,000 connections that each send 15 KiB of a request
// head and stall (under the 16 KiB head limit, so the parser alone lets each one be held: 150 MB
// in all). With --max-buffered-mib 32 the server's peak RSS grows by at most the budget + 25%
// over its warmed-up RSS, the connections past the budget get 431 and are closed, and a normal
// client is served 200 on a new connection throughout. Without the budget the growth is
// ~150 MB and the test fails. Client and server are separate processes (10,000 descriptors
// each); loopback only; every wait is bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/fd_limit.hpp"
#include "support/http_client.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace std::chrono_literals;

constexpr std::size_t connections = 10'000;
constexpr std::size_t budget_mib = 32;
constexpr std::size_t pad = 15 * 1024;

// A field of /proc/PID/status in KiB (VmRSS, VmHWM), 0 when absent.
std::size_t status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1));
  return 0;
}

bool get_200(const nbio::address& to) {
  http_client c(to);
  if (!c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")) return false;
  auto r = c.read_response();
  return r && r->status == 200;
}

// How many of `fds` have bytes (or EOF) waiting.
std::size_t readable(std::vector<unique_fd>& fds) {
  std::vector<pollfd> p;
  p.reserve(fds.size());
  for (auto& fd : fds)
    p.push_back({fd.get(), POLLIN, 0});
  if (::poll(p.data(), p.size(), 0) < 0) return 0;
  std::size_t n = 0;
  for (const pollfd& x : p)
    n += (x.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
  return n;
}

TEST(heavy_http_hello_budget, ten_thousand_stalled_15k_heads_stay_within_the_budget) {
  ASSERT_GE(raise_fd_limit(), connections + 1000);
  auto server = spawn({NBIO_TEST_HTTP_HELLO_BIN, "--host", "127.0.0.1", "--port", "0", "--loops",
                       "2", "--read-header-timeout-ms", "120000", "--max-buffered-mib",
                       std::to_string(budget_mib)});
  ASSERT_TRUE(server.started());
  const auto listening = server.read_line(10s);
  ASSERT_TRUE(listening) << "http_hello did not start";
  const auto to = nbio::address::parse(listening->substr(listening->rfind(' ') + 1));
  ASSERT_TRUE(to);

  // Warm-up: the loops' buffers, the slabs' first pages, malloc's arenas.
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(get_200(*to));
  const std::size_t baseline_kib = status_kib(server.pid(), "VmRSS");
  ASSERT_GT(baseline_kib, 0u);

  const std::string head = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(pad, 'p') + "\r\n";
  std::vector<unique_fd> stalled;
  stalled.reserve(connections);
  for (std::size_t i = 0; i < connections; ++i) {
    unique_fd fd = connect_stream(*to);
    ASSERT_TRUE(fd) << "connect " << i << ": " << std::strerror(errno);
    ASSERT_TRUE(send_all(fd.get(), head)) << i;
    stalled.push_back(std::move(fd));
    if (i % 1000 == 999) {
      ASSERT_TRUE(get_200(*to)) << "after " << i + 1 << " stalled";
    }
  }
  // Past the budget, connections are evicted: at least all but what budget + 25% can hold
  // answered (431) and closed.
  const std::size_t can_hold = (budget_mib << 20) * 5 / 4 / pad;
  EXPECT_TRUE(wait_until([&] { return readable(stalled) >= connections - can_hold; }, 30s))
      << readable(stalled);
  EXPECT_TRUE(get_200(*to));
  const std::size_t peak_kib = status_kib(server.pid(), "VmHWM");
  const std::size_t growth_kib = peak_kib - baseline_kib;
  EXPECT_LE(growth_kib, budget_mib * 1024 * 5 / 4)
      << "baseline " << baseline_kib << " KiB, peak " << peak_kib << " KiB";
  std::printf(
      "[ measure  ] server RSS: baseline %zu KiB, peak %zu KiB (+%zu KiB) for %zu x %zu "
      "B heads, budget %zu MiB\n",
      baseline_kib, peak_kib, growth_kib, connections, head.size(), budget_mib);

  // What the evicted ones received: a 431 with Date and Connection: close.
  std::size_t got_431 = 0;
  for (auto& fd : stalled) {
    char buf[512];
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n <= 0) continue;
    const std::string text(buf, static_cast<std::size_t>(n));
    if (!text.starts_with("HTTP/1.1 431 ")) continue;
    EXPECT_NE(text.find("\r\nDate: "), std::string::npos) << text;
    EXPECT_NE(text.find("\r\nConnection: close\r\n"), std::string::npos) << text;
    ++got_431;
  }
  EXPECT_GE(got_431, connections - can_hold);
  stalled.clear();  // FINs: the server closes the held ones

  ::kill(server.pid(), SIGTERM);
  std::string summary;
  while (auto line = server.read_line(20s))
    if (line->find("requests served") != std::string::npos) summary = *line;
  EXPECT_EQ(server.wait(20s), 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(summary, m, std::regex("([0-9]+) evicted over budget"))) << summary;
  EXPECT_GE(std::stoull(m[1]), got_431) << summary;
}

}  // namespace
