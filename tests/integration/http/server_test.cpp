// Integration: nbio::http::server over real loopback sockets, in each I/O mode (event loops,
// a thread per connection, and mixed: the first connection on a thread, the rest on the loops).
// The client side is raw bytes read back with the library's own response parser, plus curl and
// Python's http.client as third-party peers. Timeouts are short; every wait is a long bound,
// never a timing. Blocking and mixed runs carry the threading label ("threading_" in the name).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nbio/http/server.hpp"
#include "support/http_client.hpp"
#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using nbio::http::request;
using nbio::http::response_writer;
using nbio::http::server_options;

// Every request's client port, to tell how many connections carried them.
struct port_log {
  std::mutex m;
  std::vector<std::uint16_t> ports;
  void add(std::uint16_t p) {
    std::lock_guard lock(m);
    ports.push_back(p);
  }
  std::vector<std::uint16_t> snapshot() {
    std::lock_guard lock(m);
    return ports;
  }
};

constexpr std::size_t big_response = 16u << 20;
constexpr int stream_parts = 4;
std::string stream_part(int i) {
  return "part " + std::to_string(i) + "\n";
}
std::string whole_stream() {
  std::string s;
  for (int i = 0; i < stream_parts; ++i)
    s += stream_part(i);
  return s;
}

// The application every test serves:
//   /hello   "hello\n"
//   /echo    the request body (X-Framing: chunked or length, X-Expect: the Expect field)
//   /stream  stream_parts pieces, each written and flushed (a streamed response)
//   /big     big_response bytes of the pattern, in one write
//   /throw   throws before answering
//   other    "METHOD target\n" followed by the body
nbio::http::handler app(port_log* log = nullptr) {
  return [log](response_writer& w, request& r) {
    if (log) log->add(r.remote_address().port());
    const std::string_view path = r.path();
    if (path == "/hello") {
      w.write("hello\n");
    } else if (path == "/echo") {
      w.set_header("X-Framing", r.header("Transfer-Encoding").empty() ? "length" : "chunked");
      w.set_header("X-Expect", r.header("Expect"));
      w.write(r.body());
    } else if (path == "/stream") {
      for (int i = 0; i < stream_parts; ++i) {
        w.write(stream_part(i));
        w.flush();
      }
    } else if (path == "/big") {
      w.write(pattern(0, big_response));
    } else if (path == "/throw") {
      throw std::runtime_error("handler failed");
    } else {
      w.write(r.method());
      w.write(" ");
      w.write(r.target());
      w.write("\n");
      w.write(r.body());
    }
  };
}

class http_server : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  std::unique_ptr<http_test_server> serve(server_options config = {}, port_log* log = nullptr) {
    return std::make_unique<http_test_server>(app(log), config, listen_for(GetParam()));
  }
};

std::string get(std::string_view target, std::string_view extra_fields = "") {
  return std::string("GET ") + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" +
         std::string(extra_fields) + "\r\n";
}
std::string post(std::string_view target, std::string_view body) {
  return std::string("POST ") + std::string(target) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// --- keep-alive and connection management ---------------------------------------------------

TEST_P(http_server, keep_alive_serves_several_requests_on_one_connection) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(c.send(get("/r" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
    const std::string want = "GET /r" + std::to_string(i) + "\n";
    EXPECT_EQ(r->body, want);
    EXPECT_EQ(r->header("Content-Length"), std::to_string(want.size()));
    EXPECT_TRUE(r->header("Date"));
    EXPECT_FALSE(r->connection_close());
  }
  EXPECT_TRUE(c.quiet_for(100ms)) << "the connection closed or sent more";
  EXPECT_EQ(srv->server().requests_served(), 5u);
}

TEST_P(http_server, http10_request_closes_unless_keep_alive_asked) {
  auto srv = serve();
  {
    http_client c(srv->address());
    ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "GET /old\n");
    EXPECT_TRUE(r->connection_close());
    EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
  }
  http_client c(srv->address());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send("GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "GET /kept\n");
    EXPECT_EQ(r->header("Connection"), "keep-alive");
    EXPECT_EQ(r->header("Content-Length"), "10");
  }
  EXPECT_TRUE(c.quiet_for(100ms));
}

TEST_P(http_server, connection_close_closes_after_the_response) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/first")));
  ASSERT_TRUE(c.read_response()) << c.error();
  ASSERT_TRUE(c.send(get("/last", "Connection: close\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /last\n");
  EXPECT_TRUE(r->connection_close());
  EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
}

// --- pipelining -------------------------------------------------------------------------------

TEST_P(http_server, twenty_pipelined_requests_in_one_send_are_answered_in_order) {
  auto srv = serve();
  std::string all;
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    const std::string target = "/p/" + std::to_string(i);
    if (i % 4 == 1) {
      const std::string body = "body-" + std::to_string(i);
      all += post(target, body);
      want.push_back("POST " + target + "\n" + body);
    } else if (i % 4 == 3) {
      all += "POST " + target + " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
             "3\r\nab-\r\n2\r\n" + std::to_string(10 + i) + "\r\n0\r\n\r\n";
      want.push_back("POST " + target + "\nab-" + std::to_string(10 + i));
    } else {
      all += get(target);
      want.push_back("GET " + target + "\n");
    }
  }
  http_client c(srv->address());
  ASSERT_TRUE(c.send(all));
  for (int i = 0; i < 20; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << "response " << i << ": " << c.error();
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->body, want[static_cast<std::size_t>(i)]) << i;
  }
  EXPECT_TRUE(c.quiet_for(100ms)) << "extra: " << c.extra();
}

// RFC 9112 2.2: a server SHOULD ignore empty lines before a request line (some clients send an
// extra CRLF after a POST body).
TEST_P(http_server, pipelined_requests_with_a_stray_crlf_between_them_are_answered) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(post("/a", "xy") + "\r\n" + get("/b")));
  for (const char* want : {"POST /a\nxy", "GET /b\n"}) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->body, want);
  }
  EXPECT_TRUE(c.quiet_for(100ms)) << "extra: " << c.extra();
}

// Two pipelined requests written in two pieces, cut at every byte position: each cut gets the
// same two responses (the server's incomplete-request path, resumed at every state).
TEST_P(http_server, two_pipelined_requests_split_at_every_byte_are_answered_alike) {
  auto srv = serve();
  const std::string inputs[] = {
      get("/a") + post("/b", "hello"),
      "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n" +
          get("/d", "Connection: close\r\n"),
  };
  const std::vector<std::string> wants[] = {{"GET /a\n", "POST /b\nhello"},
                                            {"POST /c\nwikipedia", "GET /d\n"}};
  for (std::size_t k = 0; k < 2; ++k) {
    const std::string& in = inputs[k];
    for (std::size_t cut = 1; cut < in.size(); ++cut) {
      SCOPED_TRACE("input " + std::to_string(k) + " cut at " + std::to_string(cut));
      http_client c(srv->address());
      ASSERT_TRUE(c.send(in.substr(0, cut)));
      std::this_thread::sleep_for(1ms);  // most often two reads on the server's side
      ASSERT_TRUE(c.send(in.substr(cut)));
      for (const std::string& want : wants[k]) {
        auto r = c.read_response();
        ASSERT_TRUE(r) << c.error();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, want);
      }
      if (k == 1) {
        EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
      }
    }
  }
}

// --- request bodies ---------------------------------------------------------------------------

TEST_P(http_server, small_content_length_body_is_echoed) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(post("/echo", "a small body")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "a small body");
  EXPECT_EQ(r->header("X-Framing"), "length");
  EXPECT_EQ(r->header("Content-Length"), "12");
}

TEST_P(http_server, one_mib_body_arriving_in_many_reads_is_echoed) {
  auto srv = serve();
  const std::string body = pattern(0, 1u << 20);
  http_client c(srv->address());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n"));
  for (std::size_t off = 0; off < body.size(); off += 16u << 10) {
    ASSERT_TRUE(c.send(std::string_view(body).substr(off, 16u << 10)));
    if (off % (256u << 10) == 0) std::this_thread::sleep_for(2ms);
  }
  auto r = c.read_response("POST", 30s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), body.size());
  EXPECT_EQ(pattern_mismatch(r->body), std::string::npos);
  // The connection carries on.
  ASSERT_TRUE(c.send(get("/hello")));
  auto next = c.read_response();
  ASSERT_TRUE(next) << c.error();
  EXPECT_EQ(next->body, "hello\n");
}

TEST_P(http_server, chunked_upload_is_echoed) {
  auto srv = serve();
  http_client c(srv->address());
  // Small chunks with an extension and a trailer, in several writes.
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (std::string_view piece :
       {"5;ext=1\r\nhello\r\n", "1\r\n \r\n", "5\r\nwor", "ld\r\n", "0\r\nX-Trailer: t\r\n\r\n"}) {
    std::this_thread::sleep_for(2ms);
    ASSERT_TRUE(c.send(piece));
  }
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_EQ(r->header("X-Framing"), "chunked");

  // 200 KiB in 10,000-byte chunks, sent as one stream.
  const std::string body = pattern(0, 200u << 10);
  std::string framed = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t off = 0; off < body.size(); off += 10000) {
    const std::string_view chunk = std::string_view(body).substr(off, 10000);
    char size[16];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    framed += size;
    framed += chunk;
    framed += "\r\n";
  }
  framed += "0\r\n\r\n";
  ASSERT_TRUE(c.send(framed));
  r = c.read_response("POST", 30s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), body.size());
  EXPECT_EQ(pattern_mismatch(r->body), std::string::npos);
}

TEST_P(http_server, expect_100_continue_is_answered_before_the_body_is_sent) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response("POST");
  ASSERT_TRUE(interim) << c.error();
  EXPECT_EQ(interim->status, 100);
  EXPECT_TRUE(interim->body.empty());
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response("POST");
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->header("X-Expect"), "100-continue");
  EXPECT_TRUE(c.quiet_for(100ms)) << "extra: " << c.extra();
}

TEST_P(http_server, head_gets_the_head_with_content_length_and_no_body) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response("HEAD");
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), "6");
  EXPECT_TRUE(r->body.empty());
  // No body bytes follow: the next response starts right after the head.
  ASSERT_TRUE(c.send(get("/hello")));
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "hello\n");
  EXPECT_TRUE(c.extra().empty());
}

// --- streamed responses -----------------------------------------------------------------------

TEST_P(http_server, flushing_handler_gets_a_chunked_response_that_decodes) {
  auto srv = serve();
  http_client c(srv->address());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send(get("/stream")));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->framing, nbio::http::body_kind::chunked);
    EXPECT_EQ(r->header("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(r->header("Content-Length"));
    EXPECT_EQ(r->body, whole_stream());
    EXPECT_FALSE(r->connection_close());
  }
  EXPECT_TRUE(c.quiet_for(100ms)) << "extra: " << c.extra();
}

TEST_P(http_server, flushing_handler_answers_http10_with_a_body_until_close) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->framing, nbio::http::body_kind::until_close);
  EXPECT_FALSE(r->header("Transfer-Encoding"));
  EXPECT_TRUE(r->connection_close());
  EXPECT_EQ(r->body, whole_stream());
  EXPECT_TRUE(c.eof());
}

// --- bad input --------------------------------------------------------------------------------

server_options small_limits() {
  server_options cfg;
  cfg.limits.max_request_line = 256;
  cfg.limits.max_header_bytes = 1024;
  cfg.limits.max_body = 64;
  cfg.limits.max_headers = 10;
  return cfg;
}

struct bad_case {
  const char* name;
  std::string input;
  int status;
};

std::vector<bad_case> bad_cases() {
  const std::string host = "Host: t\r\n";
  return {
      {"content_length_with_transfer_encoding",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"transfer_encoding_then_content_length",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       400},
      {"differing_content_lengths",
       "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"content_length_list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3, 4\r\n\r\n", 400},
      {"transfer_encoding_not_ending_in_chunked",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n", 400},
      {"transfer_encoding_gzip_only",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 400},
      {"transfer_encoding_in_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"obs_fold", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n\t2\r\n\r\n", 400},
      {"bare_lf", "GET / HTTP/1.1\n" + std::string("Host: t\n\n"), 400},
      {"bare_lf_in_fields", "GET / HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n", 400},
      {"bare_cr", "GET / HTTP/1.1\r\nHost: t\rX-A: 1\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400},
      {"space_before_colon_transfer_encoding",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n", 400},
      {"missing_host_in_http11", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400},
      {"duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"bad_chunk_size",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       400},
      {"http_2_0", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
      {"http_1_2", "GET / HTTP/1.2\r\n" + host + "\r\n", 505},
      {"expect_other_than_continue", "POST / HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", 417},
      {"request_line_over_limit", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\n" + host + "\r\n",
       414},
      {"headers_over_limit",
       "GET / HTTP/1.1\r\n" + host + "X-Big: " + std::string(2000, 'b') + "\r\n\r\n", 431},
      {"too_many_headers",
       [&] {
         std::string r = "GET / HTTP/1.1\r\n" + host;
         for (int i = 0; i < 12; ++i)
           r += "X-" + std::to_string(i) + ": v\r\n";
         return r + "\r\n";
       }(),
       431},
      {"content_length_over_max_body", "POST / HTTP/1.1\r\n" + host + "Content-Length: 65\r\n\r\n",
       413},
      {"chunked_body_over_max_body",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n41\r\n" +
           std::string(65, 'x') + "\r\n0\r\n\r\n",
       413},
      {"chunked_body_over_max_body_in_small_chunks",
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + "20\r\n" +
           std::string(32, 'x') + "\r\n20\r\n" + std::string(32, 'y') + "\r\n" +
           "1\r\nz\r\n0\r\n\r\n",
       413},
  };
}

TEST_P(http_server, bad_requests_get_their_status_with_connection_close_then_close) {
  auto srv = serve(small_limits());
  for (const bad_case& bc : bad_cases()) {
    SCOPED_TRACE(bc.name);
    http_client c(srv->address());
    ASSERT_TRUE(c.send(bc.input));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, bc.status);
    EXPECT_TRUE(r->connection_close());
    EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
  }
  EXPECT_EQ(srv->server().requests_served(), 0u) << "a bad request reached the handler";
}

// The same inputs after a good request on a kept-alive connection: the error path from the
// middle of a connection's life (and its buffered state) answers alike.
TEST_P(http_server, bad_request_after_a_good_one_gets_its_status_then_close) {
  auto srv = serve(small_limits());
  for (const bad_case& bc : bad_cases()) {
    SCOPED_TRACE(bc.name);
    http_client c(srv->address());
    ASSERT_TRUE(c.send(get("/ok")));
    auto ok = c.read_response();
    ASSERT_TRUE(ok) << c.error();
    EXPECT_EQ(ok->status, 200);
    ASSERT_TRUE(c.send(bc.input));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, bc.status);
    EXPECT_TRUE(r->connection_close());
    EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
  }
}

TEST_P(http_server, bad_request_does_not_disturb_another_connections_keep_alive) {
  auto srv = serve(small_limits());
  http_client good(srv->address());
  // Mixed mode: this connection takes the one blocking slot; the bad ones go to the loops.
  if (GetParam() == nbio::io_mode::mixed) {
    EXPECT_TRUE(wait_until([&] { return srv->listener().blocking_online() == 1; }));
  }
  ASSERT_TRUE(good.send(get("/one")));
  auto r = good.read_response();
  ASSERT_TRUE(r) << good.error();
  EXPECT_EQ(r->body, "GET /one\n");

  // Half a request on the good connection, held by the server while the bad one fails.
  const std::string next = post("/two", "0123456789");
  ASSERT_TRUE(good.send(next.substr(0, 20)));
  std::this_thread::sleep_for(5ms);
  for (const bad_case& bc : bad_cases()) {
    SCOPED_TRACE(bc.name);
    http_client bad(srv->address());
    ASSERT_TRUE(bad.send(bc.input));
    auto b = bad.read_response();
    ASSERT_TRUE(b) << bad.error();
    EXPECT_EQ(b->status, bc.status);
    EXPECT_TRUE(bad.closed_by_peer());
  }
  ASSERT_TRUE(good.send(next.substr(20)));
  r = good.read_response();
  ASSERT_TRUE(r) << good.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /two\n0123456789");
  ASSERT_TRUE(good.send(get("/three")));
  r = good.read_response();
  ASSERT_TRUE(r) << good.error();
  EXPECT_EQ(r->body, "GET /three\n");
  EXPECT_FALSE(r->connection_close());
}

// --- timeouts and limits ----------------------------------------------------------------------

// Slowloris: a head that keeps trickling in, a byte every 100 ms, is cut off by the header
// timeout, counted from its first byte (reads do not push it back). No response is sent.
TEST_P(http_server, head_trickling_in_is_closed_by_the_header_timeout) {
  server_options cfg;
  cfg.read_header_timeout = 500ms;
  auto srv = serve(cfg);
  http_client c(srv->address());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "));
  const auto give_up = std::chrono::steady_clock::now() + cfg.read_header_timeout + 5s;
  bool closed = false;
  int sent = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (!c.send("a")) {
      closed = true;  // the server closed and the peer reset
      break;
    }
    ++sent;
    if (c.closed_by_peer(100ms)) {
      closed = true;
      break;
    }
    if (c.eof() || !c.extra().empty()) break;
  }
  EXPECT_TRUE(closed) << "still open after " << sent << " bytes, one per 100 ms";
  EXPECT_TRUE(c.extra().empty()) << "a timed-out connection got a response: " << c.extra();
  EXPECT_GT(sent, 1);
}

TEST_P(http_server, idle_keep_alive_connection_is_closed_after_the_idle_timeout) {
  server_options cfg;
  cfg.idle_timeout = 300ms;
  auto srv = serve(cfg);
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/hello")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_FALSE(r->connection_close());
  EXPECT_TRUE(c.closed_by_peer(10s)) << "extra: " << c.extra();
}

// A new connection that sends nothing is held to the header timeout.
TEST_P(http_server, silent_new_connection_is_closed_by_the_header_timeout) {
  server_options cfg;
  cfg.read_header_timeout = 300ms;
  auto srv = serve(cfg);
  http_client c(srv->address());
  EXPECT_TRUE(c.closed_by_peer(10s)) << "extra: " << c.extra();
}

// The idle timeout runs between requests: a 3 MiB response read slowly over far longer than
// it is delivered whole.
TEST_P(http_server, idle_timeout_does_not_cut_a_response_being_read_slowly) {
  server_options cfg;
  cfg.idle_timeout = 300ms;
  constexpr std::size_t size = 3u << 20;
  http_test_server srv([](response_writer& w, request&) { w.write(pattern(0, size)); }, cfg,
                       listen_for(GetParam()));
  unique_fd fd = connect_small_rcvbuf(srv.address(), 16384);
  ASSERT_TRUE(send_all(fd.get(), get("/slow")));
  std::string got;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    read_result r = recv_exact(fd.get(), 16384, 10s);
    got += r.data;
    const std::size_t head_end = got.find("\r\n\r\n");
    if (r.eof || r.error || r.timed_out) break;
    if (head_end != std::string::npos && got.size() - head_end - 4 >= size) break;
    std::this_thread::sleep_for(5ms);
  }
  const std::size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string body = got.substr(head_end + 4);
  EXPECT_EQ(body.size(), size);
  EXPECT_EQ(pattern_mismatch(body), std::string::npos);
}

TEST_P(http_server, max_requests_per_conn_answers_the_last_with_connection_close) {
  server_options cfg;
  cfg.max_requests_per_conn = 3;
  auto srv = serve(cfg);
  http_client c(srv->address());
  for (int i = 1; i <= 3; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(c.send(get("/n")));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->connection_close(), i == 3);
  }
  EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
}

TEST_P(http_server, max_requests_per_conn_cuts_a_pipeline_after_the_last) {
  server_options cfg;
  cfg.max_requests_per_conn = 3;
  auto srv = serve(cfg);
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/1") + get("/2") + get("/3") + get("/4") + get("/5")));
  for (int i = 1; i <= 3; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << ": " << c.error();
    EXPECT_EQ(r->body, "GET /" + std::to_string(i) + "\n");
    EXPECT_EQ(r->connection_close(), i == 3);
  }
  EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
}

// --- handler failures and shutdown ------------------------------------------------------------

TEST_P(http_server, handler_that_throws_gets_500) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/throw")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->header("Content-Length"), std::to_string(r->body.size()));
  if (r->connection_close()) {
    EXPECT_TRUE(c.closed_by_peer()) << "extra: " << c.extra();
  } else {
    ASSERT_TRUE(c.send(get("/hello")));
    auto next = c.read_response();
    ASSERT_TRUE(next) << c.error();
    EXPECT_EQ(next->body, "hello\n");
  }
  // Other connections are served as before.
  http_client other(srv->address());
  ASSERT_TRUE(other.send(get("/hello")));
  auto r2 = other.read_response();
  ASSERT_TRUE(r2) << other.error();
  EXPECT_EQ(r2->status, 200);
}

TEST_P(http_server, graceful_shutdown_closes_an_idle_keep_alive_connection) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/hello")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_FALSE(r->connection_close());
  auto done = std::async(std::launch::async, [&] { return srv->engine().shutdown(10s); });
  EXPECT_TRUE(c.closed_by_peer(20s)) << "extra: " << c.extra();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(done.get()) << "shutdown() reports a connection that did not finish";
}

TEST_P(http_server, graceful_shutdown_lets_a_request_in_progress_finish_then_closes) {
  auto srv = serve();
  http_client c(srv->address());
  const std::string req = post("/late", "finished");
  ASSERT_TRUE(c.send(req.substr(0, 30)));
  std::this_thread::sleep_for(20ms);
  auto done = std::async(std::launch::async, [&] { return srv->engine().shutdown(10s); });
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(c.send(req.substr(30)));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "POST /late\nfinished");
  EXPECT_TRUE(r->connection_close());
  EXPECT_TRUE(c.closed_by_peer(20s)) << "extra: " << c.extra();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(done.get());
}

// --- regressions: bugs these tests found ------------------------------------------------------

// A HEAD request to a handler that flush()es: finish() used to send the last-chunk
// "0\r\n\r\n", a body a HEAD response must not have, which the client took as the start of
// the next response on the connection.
TEST_P(http_server, head_to_a_streaming_handler_gets_the_head_only) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send("HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response("HEAD");
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.quiet_for(200ms)) << "extra: " << ::testing::PrintToString(c.extra());
  ASSERT_TRUE(c.send(get("/hello")));
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "hello\n");
}

// server_options::read_body_timeout counts "from the end of a head to the end of its body"; it
// used to be re-armed in full on every partial read, so a body trickling in a byte every 100 ms
// held the connection (and its pending buffer) as long as the client liked.
TEST_P(http_server, body_trickling_in_is_cut_off_by_the_body_timeout) {
  server_options cfg;
  cfg.read_body_timeout = 500ms;
  auto srv = serve(cfg);
  http_client c(srv->address());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"));
  const auto give_up = std::chrono::steady_clock::now() + cfg.read_body_timeout + 5s;
  bool closed = false;
  int sent = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (!c.send("a")) {
      closed = true;
      break;
    }
    ++sent;
    if (c.closed_by_peer(100ms)) {
      closed = true;
      break;
    }
    if (c.eof() || !c.extra().empty()) break;
  }
  EXPECT_TRUE(closed) << "still open after " << sent << " body bytes, one per 100 ms";
  EXPECT_TRUE(c.extra().empty()) << c.extra();
}

// A whole response bigger than the engine's default max_write_queue (4 MiB): on an event loop
// the writer hands it to conn::write in one piece and the rest waits in the queue; the server
// now gives connections server_options::max_write_queue (64 MiB), so it goes out whole.
TEST_P(http_server, a_16_mib_response_reaches_a_reading_client_whole) {
  auto srv = serve();
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/big")));
  auto r = c.read_response("GET", 30s);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body.size(), big_response);
  EXPECT_EQ(pattern_mismatch(r->body), std::string::npos);
}

// Two servers with different limits on one engine: the per-thread scratch (thread_scratch::work
// in server.cpp) used to keep the limits of whichever server first served on that loop thread
// for every later request on it.
TEST(http_server_shared_loop, two_servers_on_one_loop_keep_their_own_limits) {
  nbio::engine eng({.loops = 1});
  nbio::http::server strict(eng, app(), small_limits());  // max_request_line 256
  nbio::http::server lax(eng, app());                     // max_request_line 8 KiB
  const nbio::address strict_addr = strict.listen("127.0.0.1:0").local_address();
  const nbio::address lax_addr = lax.listen("127.0.0.1:0").local_address();
  eng.start();
  {
    http_client c(strict_addr);
    ASSERT_TRUE(c.send(get("/first")));
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200);
  }
  http_client c(lax_addr);
  ASSERT_TRUE(c.send(get("/" + std::string(300, 'a'))));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200) << "the lax server applied the strict server's 256-byte limit";
}

// --- real peers -------------------------------------------------------------------------------

std::string url(const http_test_server& srv, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(srv.address().port()) + std::string(path);
}

// The body after the last head of a `curl -i` output.
std::string last_body(const std::string& out) {
  const std::size_t head_start = out.rfind("HTTP/1.1 ");
  if (head_start == std::string::npos) return {};
  const std::size_t end = out.find("\r\n\r\n", head_start);
  return end == std::string::npos ? std::string() : out.substr(end + 4);
}

// Printable, so that curl output stays readable in a failure message.
std::string text_body(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; s.size() < n; ++i)
    s += "line " + std::to_string(i) + " of the upload\n";
  s.resize(n);
  return s;
}

TEST_P(http_server, curl_get_and_keep_alive_over_two_urls) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  port_log log;
  auto srv = serve({}, &log);
  tool_run one = run_tool("curl -s -i --max-time 20 " + url(*srv, "/hello"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_EQ(one.output.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << one.output;
  EXPECT_NE(one.output.find("Content-Length: 6\r\n"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("Date: "), std::string::npos) << one.output;
  EXPECT_EQ(last_body(one.output), "hello\n");

  tool_run two =
      run_tool("curl -s -i --max-time 20 " + url(*srv, "/a") + " " + url(*srv, "/b?x=1"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_NE(two.output.find("GET /a\n"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("GET /b?x=1\n"), std::string::npos) << two.output;
  const auto ports = log.snapshot();
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[1], ports[2]) << "curl did not reuse the connection";
}

TEST_P(http_server, curl_chunked_upload_is_echoed) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  auto srv = serve();
  const std::string content = text_body(100'000);
  temp_file file(content);
  tool_run r = run_tool("curl -s -i --max-time 20 --data-binary @" + file.path() +
                        " -H 'Transfer-Encoding: chunked' " + url(*srv, "/echo"));
  ASSERT_EQ(r.status, 0) << r.output.substr(0, 500);
  EXPECT_NE(r.output.find("X-Framing: chunked\r\n"), std::string::npos) << r.output.substr(0, 500);
  EXPECT_TRUE(last_body(r.output) == content) << r.output.substr(0, 500);
}

TEST_P(http_server, curl_expect_100_continue_gets_continue_then_the_response) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  auto srv = serve();
  const std::string content = text_body(5'000);
  temp_file file(content);
  tool_run r = run_tool("curl -s -i --max-time 20 --data-binary @" + file.path() +
                        " -H 'Expect: 100-continue' " + url(*srv, "/echo"));
  ASSERT_EQ(r.status, 0) << r.output.substr(0, 500);
  const std::size_t cont = r.output.find("HTTP/1.1 100 Continue\r\n");
  const std::size_t ok = r.output.find("HTTP/1.1 200 OK\r\n");
  ASSERT_NE(cont, std::string::npos) << r.output.substr(0, 500);
  ASSERT_NE(ok, std::string::npos) << r.output.substr(0, 500);
  EXPECT_LT(cont, ok);
  EXPECT_NE(r.output.find("X-Expect: 100-continue\r\n"), std::string::npos);
  EXPECT_TRUE(last_body(r.output) == content) << r.output.substr(0, 500);
}

TEST_P(http_server, curl_head_gets_content_length_and_no_body) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  auto srv = serve();
  tool_run r = run_tool("curl -s -I --max-time 20 " + url(*srv, "/hello"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("Content-Length: 6\r\n"), std::string::npos) << r.output;
  EXPECT_EQ(last_body(r.output), "") << r.output;
}

// Python's http.client: five requests on one HTTPConnection (keep-alive, a body, a chunked
// response, HEAD), each printed as "status method path body content-length transfer-encoding".
TEST_P(http_server, python_http_client_requests_on_one_connection) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0) NBIO_PEER_MISSING(python << " not installed");
  port_log log;
  auto srv = serve({}, &log);
  const std::string script =
      "import http.client, sys\n"
      "c = http.client.HTTPConnection(\"127.0.0.1\", int(sys.argv[1]), timeout=10)\n"
      "for m, p, b in [(\"GET\", \"/hello\", None), (\"POST\", \"/echo\", b\"abc\"),\n"
      "                (\"GET\", \"/stream\", None), (\"HEAD\", \"/hello\", None),\n"
      "                (\"GET\", \"/hello\", None)]:\n"
      "    c.request(m, p, body=b)\n"
      "    r = c.getresponse()\n"
      "    d = r.read()\n"
      "    print(r.status, m, p, repr(d), r.getheader(\"Content-Length\"),\n"
      "          r.getheader(\"Transfer-Encoding\"))\n"
      "c.close()\n";
  tool_run r = run_tool(std::string(python) + " -c '" + script + "' " +
                        std::to_string(srv->address().port()) + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output,
            "200 GET /hello b'hello\\n' 6 None\n"
            "200 POST /echo b'abc' 3 None\n"
            "200 GET /stream b'part 0\\npart 1\\npart 2\\npart 3\\n' None chunked\n"
            "200 HEAD /hello b'' 6 None\n"
            "200 GET /hello b'hello\\n' 6 None\n");
  const auto ports = log.snapshot();
  ASSERT_EQ(ports.size(), 5u);
  EXPECT_EQ(std::set<std::uint16_t>(ports.begin(), ports.end()).size(), 1u)
      << "http.client opened more than one connection";
}

INSTANTIATE_TEST_SUITE_P(http_loop, http_server, ::testing::Values(nbio::io_mode::nonblocking),
                         io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_blocking, http_server,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_mixed, http_server, ::testing::Values(nbio::io_mode::mixed),
                         io_mode_name);

}  // namespace
