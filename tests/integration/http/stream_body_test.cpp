// Integration: streamed request bodies (server_options::stream_body, request::on_body) over real
// loopback sockets in the three I/O modes: pieces reach the reader in order as they arrive, the
// response can wait for the end, bodies past limits.max_body stream within max_streamed_body,
// and a client that leaves, stalls or sends bad framing ends the reader with an error. Then
// regressions at the edges, each failed before its fix: streamed bodies behind deferred
// responses, Expect: 100-continue, Connection: close and graceful shutdown, cancellation, a
// hijack from the pending buffer, and an upgrade init or a reader that throws.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "nbio/http/serve_mux.hpp"
#include "support/http_client.hpp"
#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/payload.hpp"
#include "support/peer.hpp"
#include "support/raw_socket.hpp"
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
  std::size_t size() {
    std::lock_guard lock(mutex);
    return bytes.size();
  }
};

class http_stream_body : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  ~http_stream_body() override {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  // POST /upload streams its body into `log` and answers "got N" once it is in (deferred);
  // POST /early answers at once and streams the body too; POST /drop sets no reader;
  // POST /collected is not streamed; POST /late defers, streams the body into `log` and answers
  // "late" from another thread `late_after_` after the head; POST /nobody defers without a
  // reader and answers from another thread. max_body is 1 KiB; streamed bodies may be 64 MiB.
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
    mux_.handle("POST /late", [this](response_writer& w, request& r) {
      auto d = std::make_shared<deferred_response>(w.defer());
      r.on_body([this](std::string_view d, bool last, std::error_code ec) {
        if (!last) return log_.piece(d);
        log_.end(ec);
      });
      std::lock_guard lock(threads_mutex_);
      threads_.emplace_back([d, after = late_after_] {
        std::this_thread::sleep_for(after);
        d->writer().write("late");
        d->finish();
      });
    });
    mux_.handle("POST /nobody", [this](response_writer& w, request&) {
      auto d = std::make_shared<deferred_response>(w.defer());
      std::lock_guard lock(threads_mutex_);
      threads_.emplace_back([d] {
        std::this_thread::sleep_for(50ms);
        d->writer().write("nobody");
        d->finish();
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
  std::chrono::milliseconds late_after_{50};
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
};

std::string post_head(std::string_view path, std::size_t length, std::string_view extra = {}) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
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

// Passes: a streamed body behind a deferred answer, with the next request pipelined in the same
// write, then served in order once the answer is finished.
TEST_P(http_stream_body, deferred_streamed_body_then_pipelined_request_in_one_write) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(
      client.send(post_head("/late", 5) + "hello" + "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "late");
  auto n = client.read_response();
  ASSERT_TRUE(n);
  EXPECT_EQ(n->body, "next");
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.bytes, "hello");
  EXPECT_FALSE(log_.ends[0]);
}

// Passes: the body arrives in pieces while the deferred answer is outstanding; pipelined bytes
// behind it wait their turn.
TEST_P(http_stream_body, deferred_streamed_body_in_pieces_then_pipelined_request) {
  late_after_ = 200ms;
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/late", 10) + "01234"));
  ASSERT_TRUE(wait_until([&] { return log_.size() == 5; }));
  ASSERT_TRUE(client.send("56789GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "late");
  auto n = client.read_response();
  ASSERT_TRUE(n);
  EXPECT_EQ(n->body, "next");
  std::lock_guard lock(log_.mutex);
  EXPECT_EQ(log_.bytes, "0123456789");
}

// A deferred answer that takes longer than read_body_timeout, to a request whose (small) body
// arrived with its head: the body deadline ends with the body (it used to stay armed and close
// the connection while the response was being prepared).
TEST_P(http_stream_body, a_deferred_answer_slower_than_the_body_timeout_is_not_cut_off) {
  server_options cfg;
  cfg.read_body_timeout = 300ms;
  late_after_ = 900ms;
  auto srv = serve(cfg);
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/late", 5) + "hello"));
  auto r = client.read_response("POST", 5s);
  ASSERT_TRUE(r) << "the connection was closed before the deferred answer";
  EXPECT_EQ(r->body, "late");
}

// A handler that answers at once and reads the body, for a request with Expect: 100-continue:
// "100 Continue" must come before the final response (RFC 9110 15.2: no 1xx after the final
// one; the client would take it for its next request's).
TEST_P(http_stream_body, continue_comes_before_an_early_final_response) {
  auto srv = serve();
  auto fd = connect_stream(srv->address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), post_head("/early", 5, "Expect: 100-continue\r\n")));
  const read_result got = recv_for(fd.get(), 500ms);
  const auto final_at = got.data.find("HTTP/1.1 200");
  ASSERT_NE(final_at, std::string::npos) << got.data;
  EXPECT_EQ(got.data.find("HTTP/1.1 100", final_at), std::string::npos)
      << "100 Continue after the final response:\n"
      << got.data;
}

// A handler that defers without a reader (a worker-pool handler, say) for a streamed request
// with Expect: 100-continue: the client gets 100, sends the body (dropped) and gets the deferred
// answer (the connection used to close at once, unanswered).
TEST_P(http_stream_body, a_deferred_answer_without_a_reader_and_expect_continue_is_answered) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/nobody", 5, "Expect: 100-continue\r\n")));
  auto cont = client.read_response("POST", 3s);
  ASSERT_TRUE(cont) << "no 100 Continue";
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(client.send("abcde"));  // dropped: the handler set no reader
  auto r = client.read_response("POST", 3s);
  ASSERT_TRUE(r) << "no response: the connection closed before the deferred answer";
  EXPECT_EQ(r->body, "nobody");
}

// A request with Connection: close (or the last of max_requests_per_conn, or one during a
// graceful shutdown) whose handler answers at once and sets a reader: the body still streams to
// the reader, then the connection closes (the reader used to be dropped without a last call).
TEST_P(http_stream_body, connection_close_keeps_streaming_to_the_reader_then_closes) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/early", 10, "Connection: close\r\n") + "01234"));
  auto r = client.read_response("POST");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "early");
  // The reader still gets the body; the connection closes once it is in.
  ASSERT_TRUE(client.send("56789"));
  EXPECT_TRUE(wait_until([&] { return log_.end_count() == 1; }, 2s))
      << "the reader never heard the body end or fail";
  EXPECT_TRUE(client.closed_by_peer(2s));
}

// Graceful shutdown while a streamed body (answered at once) is in flight: the connection closes
// once the body is in (it used to sit idle until idle_timeout, and shutdown() ran into its
// deadline).
TEST_P(http_stream_body, graceful_shutdown_closes_once_a_streamed_body_is_in) {
  auto srv = serve();
  http_client client(srv->address());
  ASSERT_TRUE(client.send(post_head("/early", 10) + "01234"));
  auto r = client.read_response("POST");
  ASSERT_TRUE(r);
  ASSERT_TRUE(wait_until([&] { return log_.size() == 5; }));
  auto done = std::async(std::launch::async, [&] { return srv->engine().shutdown(3s); });
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(client.send("56789"));
  EXPECT_TRUE(wait_until([&] { return log_.end_count() == 1; }));
  EXPECT_TRUE(client.closed_by_peer(1500ms)) << "the connection stayed open after the body";
  EXPECT_TRUE(done.get()) << "shutdown() ran into its deadline";
}

// Passes: a client that leaves during a deferred, streamed request: the reader ends with an
// error and on_client_gone fires once, on the connection's thread.
TEST_P(http_stream_body, client_leaving_mid_body_ends_reader_and_fires_cancel_once) {
  std::atomic<int> cancels{0};
  std::shared_ptr<deferred_response> kept;
  std::mutex kept_mutex;
  mux_.handle("POST /held", [&](response_writer& w, request& r) {
    auto d = std::make_shared<deferred_response>(w.defer());
    d->on_client_gone([&] { cancels.fetch_add(1); });
    r.on_body([this](std::string_view d, bool last, std::error_code ec) {
      if (!last) return log_.piece(d);
      log_.end(ec);
    });
    std::lock_guard lock(kept_mutex);
    kept = d;
  });
  auto srv = serve();
  {
    http_client client(srv->address());
    ASSERT_TRUE(client.send(post_head("/held", 100) + "abc"));
    ASSERT_TRUE(wait_until([&] { return log_.size() == 3; }));
  }
  ASSERT_TRUE(wait_until([&] { return log_.end_count() == 1 && cancels.load() == 1; }));
  {
    std::lock_guard lock(kept_mutex);
    EXPECT_FALSE(kept->client_connected());
    kept->finish();  // harmless: dropped
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(cancels.load(), 1);
  std::lock_guard lock(log_.mutex);
  EXPECT_TRUE(log_.ends[0]);
}

// The protocol a hijacked connection moves to: echoes "<name>:<bytes>".
struct shout {
  struct conn_data {
    char name[24] = {};
  };
  void on_data(nbio::conn& c, std::string_view d) {
    std::string out = c.data<conn_data>().name;
    out += ':';
    out.append(d);
    c.write(out);
  }
};

// Passes: a hijack from the pending path (the head arrived in pieces, the bytes behind it in the
// pending buffer, which hand_over() frees): the new protocol gets those bytes intact.
TEST_P(http_stream_body, hijack_from_the_pending_buffer_hands_over_the_bytes_behind) {
  std::atomic<nbio::upgrade_target*> to{nullptr};
  mux_.handle("GET /up", [&](response_writer& w, request&) {
    w.hijack(*to.load(), [](nbio::conn& c) {
      c.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\n\r\n");
      std::strcpy(c.data<shout::conn_data>().name, "sh");
    });
  });
  mux_.handle("GET /slow", [&](response_writer& w, request&) {
    auto d = std::make_shared<deferred_response>(w.defer());
    std::lock_guard lock(threads_mutex_);
    threads_.emplace_back([d] {
      std::this_thread::sleep_for(100ms);
      d->writer().write("slow");
      d->finish();
    });
  });
  nbio::listen_options o = listen_for(GetParam());
  o.conn.reserve_data = sizeof(shout::conn_data);
  server_options cfg;
  auto srv = std::make_unique<http_test_server>(mux_.as_handler(), cfg, o);
  to = &srv->engine().make_upgrade_target(shout{});
  auto fd = connect_stream(srv->address());
  ASSERT_TRUE(fd);
  // A deferred request first, so the upgrade and what follows it wait in the pending buffer.
  ASSERT_TRUE(send_all(fd.get(), "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /up HTTP/1.1\r\nHo"));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(send_all(fd.get(), "st: t\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nAFTER"));
  const std::string expect_tail =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\n\r\nsh:AFTER";
  read_result r;
  std::string got;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!got.ends_with(expect_tail) && std::chrono::steady_clock::now() < until) {
    r = recv_for(fd.get(), 100ms);
    got += r.data;
    if (r.eof || r.error) break;
  }
  EXPECT_TRUE(got.ends_with(expect_tail)) << got;
  EXPECT_NE(got.find("slow"), std::string::npos) << got;
}

INSTANTIATE_TEST_SUITE_P(http_stream_body_loop, http_stream_body,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_stream_body_blocking, http_stream_body,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_stream_body_mixed, http_stream_body,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

// An init (response_writer::hijack's) that throws closes that connection; the process lives
// (the exception used to leave on_data and terminate it).
TEST(http_stream_body_DeathTest, a_hijack_init_that_throws_closes_the_connection) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        {
          serve_mux mux;
          std::atomic<nbio::upgrade_target*> to{nullptr};
          mux.handle("GET /up", [&](response_writer& w, request&) {
            w.hijack(*to.load(), [](nbio::conn&) { throw std::runtime_error("bad upgrade"); });
          });
          nbio::listen_options o;
          o.conn.reserve_data = sizeof(shout::conn_data);
          http_test_server srv(mux.as_handler(), {}, o);
          to = &srv.engine().make_upgrade_target(shout{});
          http_client client(srv.address());
          client.send("GET /up HTTP/1.1\r\nHost: t\r\n\r\n");
          client.closed_by_peer(2s);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A reader that throws when told of an error (a common "if (ec) throw system_error(ec)"), on
// malformed chunked framing: the connection closes, the process lives (the exception used to
// escape into the loop and terminate it).
TEST(http_stream_body_DeathTest, a_reader_throwing_on_a_framing_error_closes_the_connection) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::atomic<bool> ended{false};
        {
          server_options cfg;
          cfg.stream_body = [](const request&) { return true; };
          http_test_server srv(
              [&](response_writer& w, request& r) {
                w.write("ok");
                r.on_body([&](std::string_view, bool last, std::error_code ec) {
                  if (last) ended = true;
                  if (ec) throw std::system_error(ec);
                });
              },
              cfg);
          http_client client(srv.address());
          client.send(
              "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
          wait_until([&] { return ended.load(); }, 3s);
          std::this_thread::sleep_for(200ms);
        }
        std::_Exit(ended ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
