// http_hello end to end against third-party peers: slowhttptest's slowloris mode (heads sent a
// few bytes a second on hundreds of connections) must be cut off by the header timeout while
// the server keeps answering its availability probes; wrk pipelining 16 requests per write
// (bench/http/pipeline.lua) gets every response, in order, with no error. Loopback only;
// bounded.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "support/child_process.hpp"
#include "support/peer.hpp"
#include "support/spawn.hpp"

namespace {

using namespace std::chrono_literals;
using nbio_test::spawn;

// slowhttptest colours its report: drop the escape sequences.
std::string plain(const std::string& s) {
  static const std::regex ansi("\x1b\\[[0-9;]*m");
  return std::regex_replace(s, ansi, "");
}

TEST(http_hello_app, slowloris_is_cut_off_by_the_header_timeout) {
  if (::access("/usr/bin/slowhttptest", X_OK) != 0) NBIO_PEER_MISSING("slowhttptest not installed");
  auto server = spawn({NBIO_TEST_HTTP_HELLO_BIN, "--host", "127.0.0.1", "--port", "0", "--loops",
                       "1", "--read-header-timeout-ms", "1500"});
  ASSERT_TRUE(server.started());
  const auto listening = server.read_line(10s);
  ASSERT_TRUE(listening) << "http_hello did not start";
  const std::string port = listening->substr(listening->rfind(':') + 1);

  // 300 slow connections at 300/s, each sending a header line every second (so a timeout
  // that every read pushed back would never fire: it is 1.5 s from the head's first byte), for
  // at most 8 s; slowhttptest probes availability with a connection of its own (2 s timeout).
  auto attack = spawn({"/usr/bin/slowhttptest", "-H", "-c", "300", "-r", "300", "-i", "1", "-l",
                       "8", "-p", "2", "-x", "10", "-u", "http://127.0.0.1:" + port + "/"});
  ASSERT_TRUE(attack.started());
  std::string report;
  while (auto line = attack.read_line(30s))
    report += plain(*line) + "\n";
  attack.wait(30s);
  ::kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.wait(10s), 0);

  // The server closed every slow connection before the test time ran out, and the probe
  // never found the service unavailable.
  EXPECT_NE(report.find("No open connections left"), std::string::npos) << report;
  EXPECT_EQ(std::regex_search(report, std::regex("service available:\\s*NO")), false) << report;
  EXPECT_NE(report.find("service available:"), std::string::npos) << report;
}

TEST(http_hello_app, wrk_pipelining_16_gets_every_response_without_errors) {
  if (::access("/usr/bin/wrk", X_OK) != 0) NBIO_PEER_MISSING("wrk not installed");
  auto server =
      spawn({NBIO_TEST_HTTP_HELLO_BIN, "--host", "127.0.0.1", "--port", "0", "--loops", "1"});
  ASSERT_TRUE(server.started());
  const auto listening = server.read_line(10s);
  ASSERT_TRUE(listening) << "http_hello did not start";
  const std::string port = listening->substr(listening->rfind(':') + 1);
  auto load = spawn({"/usr/bin/env", "WRK_CONNECTIONS=20", "/usr/bin/wrk", "-t1", "-c20", "-d2s",
                     "-s", NBIO_TEST_SOURCE_DIR "/bench/http/pipeline.lua",
                     "http://127.0.0.1:" + port + "/", "--", "16"});
  ASSERT_TRUE(load.started());
  std::string report, json;
  while (auto line = load.read_line(30s)) {
    report += *line + "\n";
    if (line->starts_with("wrk_json ")) json = line->substr(9);
  }
  EXPECT_EQ(load.wait(30s), 0) << report;
  ::kill(server.pid(), SIGTERM);
  std::string served_line;
  while (auto line = server.read_line(10s))
    if (line->find("requests served") != std::string::npos) served_line = *line;
  EXPECT_EQ(server.wait(10s), 0);

  ASSERT_FALSE(json.empty()) << report;
  const auto j = nlohmann::json::parse(json);
  EXPECT_GT(j["requests"].get<long>(), 1000) << report;
  for (const char* e :
       {"errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout"})
    EXPECT_EQ(j[e].get<long>(), 0) << e << "\n" << report;
  // Every request wrk counted was answered by the server (wrk stops with batches in flight, so
  // the server may have answered more).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(served_line, m, std::regex("([0-9]+) requests served")))
      << served_line;
  EXPECT_GE(std::stol(m[1]), j["requests"].get<long>());
}

}  // namespace
