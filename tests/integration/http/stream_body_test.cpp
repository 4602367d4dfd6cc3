// Integration: streamed request bodies (server_options::stream_body, request::on_body) over real
// loopback sockets in the three I/O modes: pieces reach the reader in order as they arrive, the
// response can wait for the end, bodies past limits.max_body stream within max_streamed_body,
// and a client that leaves, stalls or sends bad framing ends the reader with an error.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "nbio/http/serve_mux.hpp"
#include "support/http_client.hpp"
#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/tool_run.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::http;
using namespace std::chrono_literals;

// What the readers saw, for the test thread.
struct upload_log {
  std::mutex mutex;
  std::string bytes;
  std::size_t pieces = 0;
  std::vector<std::error_code> ends;  // one per reader's last call
  bool in_order = true;               // no piece after the last call

  void piece(std::string_view d) {
    std::lock_guard lock(mutex);
    if (!ends.empty()) in_order = false;
    bytes.append(d);
    ++pieces;
  }
  void end(std::error_code ec) {
    std::lock_guard lock(mutex);
    ends.push_back(ec);
  }
  std::size_t end_count() {
    std::lock_guard lock(mutex);
    return ends.size();
  }
};

class http_stream_body : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  // POST /upload streams its body into `log` and answers "got N" once it is in (deferred);
  // POST /early answers at once and streams the body too; POST /drop sets no reader;
  // POST /collected is not streamed. max_body is 1 KiB; streamed bodies may be 64 MiB.
  std::unique_ptr<http_test_server> serve(server_options cfg = {}) {
    mux_.handle("POST /upload", [this](response_writer& w, request& r) {
      auto d = std::make_shared<deferred_response>(w.defer());
      r.on_body([this, d](std::string_view data, bool last, std::error_code ec) {
        if (!last) return log_.piece(data);
        log_.end(ec);
        if (ec) return;
        d->writer().write("got " + std::to_string(log_.bytes.size()));
        d->finish();
      });
    });
    mux_.handle("POST /early", [this](response_writer& w, request& r) {
      w.write("early");
      r.on_body([this](std::string_view data, bool last, std::error_code ec) {
        if (!last) return log_.piece(data);
        log_.end(ec);
      });
    });
    mux_.handle("POST /drop", [](response_writer& w, request&) { w.write("dropped"); });
    mux_.handle("POST /collected", [](response_writer& w, request& r) {
      w.write("collected " + std::to_string(r.body().size()));
    });
    mux_.handle("GET /next", [](response_writer& w, request&) { w.write("next"); });
    cfg.limits.max_body = 1024;
    cfg.max_streamed_body = 64u << 20;
    cfg.stream_body = [](const request& r) { return r.path() != "/collected"; };
    return std::make_unique<http_test_server>(mux_.as_handler(), cfg, listen_for(GetParam()));
  }

  serve_mux mux_;
  upload_log log_;
};

std::string post_head(std::string_view path, std::size_t length) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

TEST_P(http_stream_body, a_body_in_pieces_reaches_the_reader_in_order_then_the_answer) {
  auto srv = serve();
  const std::string body = random_payload(3u << 20, 11);  // 3 MiB: far past max_body
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/upload", body.size())));
  for (std::size_t at = 0; at < body.size(); at += 256 * 1024) {
    ASSERT_TRUE(client.send(std::string_view(body).substr(at, 256 * 1024)));
    std::this_thread::sleep_for(2ms);
  }
  auto r = client.read_response();
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "got " + std::to_string(body.size()));
  std::lock_guard lock(log_.mutex);
  EXPECT_TRUE(log_.bytes == body) << "the streamed bytes differ";
  EXPECT_GT(log_.pieces, 1u) << "not streamed";
  ASSERT_EQ(log_.ends.size(), 1u);
  EXPECT_FALSE(log_.ends[0]);
  EXPECT_TRUE(log_.in_order);
}

TEST_P(http_stream_body, a_chunked_body_streams_and_the_connection_goes_on) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(
      client.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n5;ext=1\r\nhello\r\n"));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(
      client.send("6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "got 11");
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "next");
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.bytes, "hello world");
}

TEST_P(http_stream_body, an_early_answer_goes_out_before_the_body_and_the_body_still_streams) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/early", 10) + "01234"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "early");
  ASSERT_TRUE(client.send("56789GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "next");
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.bytes, "0123456789");
}

TEST_P(http_stream_body, a_body_without_a_reader_is_dropped_and_keep_alive_goes_on) {
  auto srv = serve();
  http_client client(srv->address());
  const std::string body = random_payload(200'000, 3);
  ASSERT_TRUE(client.send(post_head("/drop", body.size()) + body +
                          "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "dropped");
  auto next = client.read_response();
  ASSERT_TRUE(next) << "the dropped body desynchronised the connection";
  EXPECT_EQ(next->body, "next");
}

TEST_P(http_stream_body, collected_bodies_keep_the_smaller_limit) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/collected", 2000) + std::string(2000, 'x')));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_P(http_stream_body, a_body_past_max_streamed_body_is_refused_at_the_head) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/upload", (64u << 20) + 1)));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(log_.end_count(), 0u);
}

TEST_P(http_stream_body, a_client_that_leaves_mid_body_ends_the_reader_with_an_error) {
  auto srv = serve();
  {
    http_client client(srv->address());
    ASSERT_TRUE(client.send(post_head("/upload", 1000) + std::string(300, 'a')));
    ASSERT_TRUE(wait_until([&] {
      std::lock_guard lock(log_.mutex);
      return log_.bytes.size() == 300;
    }));
  }
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  std::lock_guard lock(log_.mutex);
  EXPECT_TRUE(log_.ends[0]) << "a cut-off body ended without an error";
}

TEST_P(http_stream_body, malformed_chunked_framing_ends_the_reader_and_the_connection) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(
      "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"));
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  EXPECT_TRUE(client.closed_by_peer());
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.ends[0], errc::bad_chunk_size);
  EXPECT_EQ(log_.bytes, "abc");
}

TEST_P(http_stream_body, a_stalled_body_times_out_into_the_reader) {
  server_options cfg;
  cfg.read_body_timeout = 300ms;
  auto srv = serve(cfg);
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/upload", 100) + "abc"));
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  EXPECT_TRUE(client.closed_by_peer());
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.ends[0], nbio::errc::read_timeout);
}

TEST_P(http_stream_body, on_body_for_a_collected_body_answers_500) {
  mux_.handle("POST /wrong", [](response_writer&, request& r) {
    r.on_body([](std::string_view, bool, std::error_code) {});
  });
  server_options cfg;
  auto srv = std::make_unique<http_test_server>(mux_.as_handler(), cfg, listen_for(GetParam()));
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/wrong", 2) + "hi"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_P(http_stream_body, curl_uploads_with_expect_continue_and_chunked) {
  if (!have_program("curl")) NBIO_PEER_MISSING("curl not installed");
  auto srv = serve();
  const std::string content = random_payload(2u << 20, 5);
  temp_file file(content);
  const std::string url = "http://127.0.0.1:" + std::to_string(srv->address().port()) + "/upload";
  // curl sends Expect: 100-continue for a body this large and waits for the 100.
  tool_run r = run_tool("curl -s --max-time 20 --expect100-timeout 10 --data-binary @" +
                        file.path() + " -H 'Transfer-Encoding: chunked' " + url);
  ASSERT_EQ(r.status, 0) << r.output.substr(0, 300);
  EXPECT_EQ(r.output, "got " + std::to_string(content.size()));
  std::lock_guard lock(log_.mutex);
  EXPECT_TRUE(log_.bytes == content);
}

INSTANTIATE_TEST_SUITE_P(http_stream_body_loop, http_stream_body,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_stream_body_blocking, http_stream_body,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_stream_body_mixed, http_stream_body,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

}  // namespace
