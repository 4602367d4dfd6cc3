// Integration: every response the server writes by itself carries Date (RFC 9110 6.6.1) and,
// when the connection closes after it, Connection: close: the request errors (400, 413, 414,
// 417, 431, 501, 505), a handler or stream_body predicate that throws (500), the mux's 404 and
// 405, and the WebSocket upgrade's refusals (400, 403, 426). A Host that is not uri-host
// [":" port] gets 400 from the real server. Raw loopback sockets read with the library's
// response parser; every read is bounded.
//
// The server writes no 408 or 503 of its own: a timed-out connection closes without a response
// (server.hpp), and nothing answers 503.
#include <gtest/gtest.h>

#include <ctime>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "nbio/http/serve_mux.hpp"
#include "nbio/http/server.hpp"
#include "nbio/websocket/server.hpp"
#include "support/http_client.hpp"
#include "support/http_test_server.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using nbio::http::request;
using nbio::http::response_writer;

// IMF-fixdate (RFC 9110 5.6.7), and within a day of the test's clock (a sanity bound, not a
// timing: the value is the server's current second).
::testing::AssertionResult is_current_imf_fixdate(const std::optional<std::string>& date) {
  if (!date) return ::testing::AssertionFailure() << "no Date field";
  static const std::regex imf(
      "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|"
      "Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$");
  if (!std::regex_match(*date, imf)) return ::testing::AssertionFailure() << "Date: " << *date;
  std::tm tm{};
  if (!strptime(date->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm))
    return ::testing::AssertionFailure() << "unparsable Date: " << *date;
  const std::time_t then = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  if (then < now - 86400 || then > now + 86400)
    return ::testing::AssertionFailure() << "Date far from now: " << *date;
  return ::testing::AssertionSuccess();
}

// The application: a mux with GET /ok and POST /only-post, /throw throws before answering;
// bodies of /stream-throw are streamed, and the predicate deciding so throws.
nbio::http::handler app(nbio::http::serve_mux& mux) {
  mux.handle("GET /ok", [](response_writer& w, request&) { w.write("ok\n"); });
  mux.handle("POST /only-post", [](response_writer& w, request&) { w.write("posted\n"); });
  mux.handle("GET /throw",
             [](response_writer&, request&) -> void { throw std::runtime_error("handler"); });
  return mux.as_handler();
}

nbio::http::server_options small_limits() {
  nbio::http::server_options cfg;
  cfg.limits.max_request_line = 256;
  cfg.limits.max_header_bytes = 1024;
  cfg.limits.max_body = 64;
  cfg.stream_body = [](const request& r) -> bool {
    if (r.path() == "/stream-throw") throw std::runtime_error("predicate");
    return false;
  };
  return cfg;
}

struct canned_case {
  const char* name;
  std::string input;
  int status;
  bool closes;  // the server closes after answering
};

std::vector<canned_case> canned_cases() {
  const std::string host = "Host: t\r\n";
  return {
      {"bad_request", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", 400, true},
      {"bad_host", "GET /ok HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true},
      {"not_found", "GET /missing HTTP/1.1\r\n" + host + "\r\n", 404, false},
      {"method_not_allowed", "DELETE /ok HTTP/1.1\r\n" + host + "\r\n", 405, false},
      {"content_too_large", "POST /only-post HTTP/1.1\r\n" + host + "Content-Length: 65\r\n\r\n",
       413, true},
      {"uri_too_long", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\n" + host + "\r\n", 414,
       true},
      {"expectation_failed", "GET /ok HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", 417, true},
      {"header_fields_too_large",
       "GET /ok HTTP/1.1\r\n" + host + "X: " + std::string(2000, 'b') + "\r\n\r\n", 431, true},
      {"handler_throws", "GET /throw HTTP/1.1\r\n" + host + "\r\n", 500, true},
      {"stream_body_predicate_throws",
       "POST /stream-throw HTTP/1.1\r\n" + host + "Content-Length: 1\r\n\r\nx", 500, true},
      {"unsupported_transfer_coding",
       "POST /only-post HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
       true},
      {"http_version_not_supported", "GET /ok HTTP/1.2\r\n" + host + "\r\n", 505, true},
  };
}

TEST(http_canned_responses, every_self_written_status_carries_date_and_close_when_closing) {
  nbio::http::serve_mux mux;
  http_test_server srv(app(mux), small_limits());
  for (const canned_case& cc : canned_cases()) {
    SCOPED_TRACE(cc.name);
    http_client c(srv.address());
    ASSERT_TRUE(c.send(cc.input));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, cc.status);
    EXPECT_TRUE(is_current_imf_fixdate(r->header("Date")));
    EXPECT_EQ(r->connection_close(), cc.closes);
    if (cc.closes) {
      EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
    } else {  // kept alive: the connection serves the next request
      ASSERT_TRUE(c.send("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"));
      auto next = c.read_response();
      ASSERT_TRUE(next) << c.error();
      EXPECT_EQ(next->status, 200);
      EXPECT_TRUE(is_current_imf_fixdate(next->header("Date")));
    }
  }
}

TEST(http_canned_responses, host_values_outside_uri_host_get_400_and_valid_ones_are_served) {
  nbio::http::serve_mux mux;
  http_test_server srv(app(mux));
  const char* bad[] = {"a b",       "u@a",          "a/b",   "a:x",  "a:65536",
                       ":80",       "::1",          "a:1:2", "[::1", "[::1]x",
                       "[1::2::3]", "[::1%25eth0]", "a\\b",  "a%zz", "fe80::1:80"};
  for (const char* host : bad) {
    SCOPED_TRACE(host);
    http_client c(srv.address());
    ASSERT_TRUE(c.send(std::string("GET /ok HTTP/1.1\r\nHost: ") + host + "\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("Host"), std::string::npos) << r->body;
    EXPECT_TRUE(r->connection_close());
    EXPECT_TRUE(c.closed_by_peer());
  }
  const char* good[] = {"",
                        "t",
                        "t:",
                        "t:8080",
                        "127.0.0.1:65535",
                        "[::1]",
                        "[::1]:8080",
                        "[::ffff:10.0.0.1]",
                        "xn--bcher-kva.example"};
  for (const char* host : good) {
    SCOPED_TRACE(host);
    http_client c(srv.address());
    ASSERT_TRUE(c.send(std::string("GET /ok HTTP/1.1\r\nHost: ") + host + "\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(srv.server().stats().requests_served, std::size(good));
}

struct refusing_handler {
  void on_message(nbio::websocket::connection&, std::string_view, bool) {}
};

TEST(http_canned_responses, websocket_upgrade_refusals_carry_date) {
  refusing_handler h;
  nbio::websocket::endpoint_options o;
  o.check_origin = [](std::string_view origin) { return origin != "https://evil.example"; };
  ws_test_server srv(h, nbio::io_mode::nonblocking, o);
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  const std::pair<std::string, int> cases[] = {
      {upgrade + "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n", 403},
      {upgrade + "Sec-WebSocket-Version: 8\r\n\r\n", 426},
      {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n", 400},
  };
  for (const auto& [request, status] : cases) {
    SCOPED_TRACE(status);
    http_client c(srv.address());
    ASSERT_TRUE(c.send(request));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, status);
    EXPECT_TRUE(is_current_imf_fixdate(r->header("Date")));
    // A refusal leaves the connection an HTTP one: it serves the next request.
    EXPECT_FALSE(r->connection_close());
    ASSERT_TRUE(c.send("GET /none HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto next = c.read_response();
    ASSERT_TRUE(next) << c.error();
    EXPECT_EQ(next->status, 404);
    EXPECT_TRUE(is_current_imf_fixdate(next->header("Date")));
  }
}

}  // namespace
