// Regression from a review: examples/http_proxy's backpressure claim ("a fast sender cannot make
// the proxy buffer without bound"): a target that sends as fast as it can to a client that does
// not read. (Blocking mode broke it: the proxy serves in non-blocking mode only.)
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/child_process.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"
#include "support/test_server.hpp"

namespace {

using namespace std::chrono_literals;
using namespace nbio_test;

// Keeps about 2 MiB queued to every connection, refilled whenever it drains.
struct flood {
  static void fill(nbio::conn& c) {
    const std::string block(256 * 1024, 'f');
    while (c.is_open() && c.queued_bytes() < (2u << 20))
      if (c.write(block)) return;
  }
  void on_open(nbio::conn& c) { fill(c); }
  void on_drained(nbio::conn& c) { fill(c); }
  void on_data(nbio::conn&, std::string_view) {}
};

std::size_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  return 0;
}

// The proxy's peak RSS over a few seconds of a tunnel from the flooding target to a client that
// reads nothing after the 200.
std::size_t peak_rss_kib() {
  nbio::conn_options co;
  co.max_write_queue = 8u << 20;
  test_server target(flood{}, nbio::listen_options{.conn = co}, {.loops = 1});
  child_process proxy = spawn({NBIO_TEST_HTTP_PROXY_BIN, "--port", "0", "--loops", "1"});
  auto line = proxy.read_line(10s);
  if (!line) return 0;
  const std::string port = line->substr(line->rfind(':') + 1);
  unique_fd fd = connect_small_rcvbuf(*nbio::address::parse("127.0.0.1:" + port), 4096);
  EXPECT_TRUE(send_all(fd.get(),
                       "CONNECT " + target.address().to_string() + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  constexpr std::string_view ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  EXPECT_EQ(recv_exact(fd.get(), ok.size(), 10s).data, ok);
  std::size_t peak = 0;
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    peak = std::max(peak, rss_kib(proxy.pid()));
    if (peak > (400u << 10)) break;  // enough to tell; spare the machine
    std::this_thread::sleep_for(50ms);
  }
  ::kill(proxy.pid(), SIGKILL);
  proxy.wait(10s);
  return peak;
}

TEST(review_proxy, nonblocking_tunnel_to_a_client_that_does_not_read_stays_bounded) {
  const std::size_t peak = peak_rss_kib();
  ASSERT_GT(peak, 0u);
  EXPECT_LT(peak, 64u << 10) << "peak RSS " << peak << " KiB";
}

}  // namespace
