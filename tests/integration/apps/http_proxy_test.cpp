// http_proxy end to end: curl tunnels through it with CONNECT (curl -p) to http_hello, a request
// sent in the same packet as its CONNECT is forwarded once the tunnel is up, a large upload
// crosses the tunnel intact both ways, an unreachable target gets 502, and a tunnel from a
// flooding target to a client that does not read stays bounded in memory. Loopback only.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/raw_socket.hpp"
#include "support/spawn.hpp"
#include "support/test_server.hpp"
#include "support/tool_run.hpp"

namespace {

using namespace std::chrono_literals;
using namespace nbio_test;

// The port of a program that printed "listening on H:P" ("" when it did not).
std::string port_of(child_process& p) {
  auto line = p.read_line(10s);
  return line ? line->substr(line->rfind(':') + 1) : std::string();
}

// http_hello as the origin and http_proxy in front of it, stopped with SIGTERM at the end.
struct proxy_and_origin {
  child_process origin = spawn({NBIO_TEST_HTTP_HELLO_BIN, "--port", "0", "--loops", "1"});
  child_process proxy = spawn({NBIO_TEST_HTTP_PROXY_BIN, "--port", "0", "--loops", "1"});
  std::string origin_port = port_of(origin);
  std::string proxy_port = port_of(proxy);

  ~proxy_and_origin() {
    for (child_process* p : {&proxy, &origin}) {
      if (!p->started()) continue;
      ::kill(p->pid(), SIGTERM);
      EXPECT_EQ(p->wait(10s), 0);
    }
  }
};

class http_proxy_app : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(apps_.origin_port.empty()) << "http_hello did not start";
    ASSERT_FALSE(apps_.proxy_port.empty()) << "http_proxy did not start";
  }
  std::string via() const { return " -x http://127.0.0.1:" + apps_.proxy_port + " "; }
  std::string origin_url(std::string_view path) const {
    return "http://127.0.0.1:" + apps_.origin_port + std::string(path);
  }

  proxy_and_origin apps_;
  const std::string& proxy_port_ = apps_.proxy_port;
  const std::string& origin_port_ = apps_.origin_port;
};

TEST_F(http_proxy_app, curl_tunnels_through_connect) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  tool_run r = run_tool("curl -s -p --max-time 20" + via() + origin_url("/"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "hello\n");
}

TEST_F(http_proxy_app, a_large_upload_crosses_the_tunnel_both_ways) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  const std::string content = random_payload(6u << 20, 9);
  temp_file file(content);
  tool_run r = run_tool("curl -s -p --max-time 20 --data-binary @" + file.path() + via() +
                        origin_url("/echo"));
  ASSERT_EQ(r.status, 0);
  EXPECT_TRUE(r.output == content) << "the echoed body differs (" << r.output.size() << " bytes)";
}

TEST_F(http_proxy_app, bytes_sent_with_the_connect_are_forwarded_once_the_tunnel_is_up) {
  unique_fd fd = connect_stream(*nbio::address::parse("127.0.0.1:" + proxy_port_));
  ASSERT_TRUE(send_all(fd.get(), "CONNECT 127.0.0.1:" + origin_port_ +
                                     " HTTP/1.1\r\nHost: x\r\n\r\n"
                                     "GET / HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"));
  const read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.data.starts_with("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK"))
      << r.data;
  EXPECT_TRUE(r.data.ends_with("hello\n")) << r.data;
}

TEST_F(http_proxy_app, an_unreachable_target_gets_502_and_other_methods_405) {
  unique_fd fd = connect_stream(*nbio::address::parse("127.0.0.1:" + proxy_port_));
  const std::uint16_t closed_port = unused_tcp_port();
  ASSERT_TRUE(send_all(fd.get(), "CONNECT 127.0.0.1:" + std::to_string(closed_port) +
                                     " HTTP/1.1\r\nHost: x\r\n\r\n"));
  const read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.data.starts_with("HTTP/1.1 502 Bad Gateway")) << r.data;

  unique_fd other = connect_stream(*nbio::address::parse("127.0.0.1:" + proxy_port_));
  ASSERT_TRUE(send_all(other.get(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(recv_until_eof(other.get(), 10s).data.starts_with("HTTP/1.1 405")) << "not 405";
}

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
  const std::string port = port_of(proxy);
  if (port.empty()) return 0;
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

// The backpressure claim of examples/http_proxy ("a fast sender cannot make the proxy buffer
// without bound"): a target that sends as fast as it can to a client that does not read.
// (Blocking mode broke it: the proxy serves in non-blocking mode only.)
TEST(http_proxy_backpressure, nonblocking_tunnel_to_a_client_that_does_not_read_stays_bounded) {
  const std::size_t peak = peak_rss_kib();
  ASSERT_GT(peak, 0u);
  EXPECT_LT(peak, 64u << 10) << "peak RSS " << peak << " KiB";
}

}  // namespace
