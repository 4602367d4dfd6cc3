// Regressions from a review: streamed request bodies, deferred responses, cancellation and hijack
// edge cases over real loopback sockets (each failed before its fix).
#include <gtest/gtest.h>

#include <unistd.h>

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
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::http;
using namespace std::chrono_literals;

struct reader_log {
  std::mutex mutex;
  std::string bytes;
  std::vector<std::error_code> ends;
  void piece(std::string_view d) {
    std::lock_guard lock(mutex);
    bytes.append(d);
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

std::string post_head(std::string_view path, std::size_t length, std::string_view extra = {}) {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
}

class review_streams : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  ~review_streams() override {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  // POST /early answers at once and streams the body into log_; POST /late defers, streams the
  // body into log_ and answers "late" from another thread `late_after` after the head; POST
  // /nobody defers without a reader and answers from another thread.
  std::unique_ptr<http_test_server> serve(server_options cfg = {}) {
    mux_.handle("POST /early", [this](response_writer& w, request& r) {
      w.write("early");
      r.on_body([this](std::string_view d, bool last, std::error_code ec) {
        if (!last) return log_.piece(d);
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
    mux_.handle("GET /next", [](response_writer& w, request&) { w.write("next"); });
    cfg.stream_body = [](const request&) { return true; };
    return std::make_unique<http_test_server>(mux_.as_handler(), cfg, listen_for(GetParam()));
  }

  serve_mux mux_;
  reader_log log_;
  std::chrono::milliseconds late_after_{50};
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
};

// Passes: a streamed body behind a deferred answer, with the next request pipelined in the same
// write, then served in order once the answer is finished.
TEST_P(review_streams, deferred_streamed_body_then_pipelined_request_in_one_write) {
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
TEST_P(review_streams, deferred_streamed_body_in_pieces_then_pipelined_request) {
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
TEST_P(review_streams, a_deferred_answer_slower_than_the_body_timeout_is_not_cut_off) {
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
TEST_P(review_streams, continue_comes_before_an_early_final_response) {
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
TEST_P(review_streams, a_deferred_answer_without_a_reader_and_expect_continue_is_answered) {
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
TEST_P(review_streams, connection_close_keeps_streaming_to_the_reader_then_closes) {
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
TEST_P(review_streams, graceful_shutdown_closes_once_a_streamed_body_is_in) {
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
TEST_P(review_streams, client_leaving_mid_body_ends_reader_and_fires_cancel_once) {
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
TEST_P(review_streams, hijack_from_the_pending_buffer_hands_over_the_bytes_behind) {
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

// An init (response_writer::hijack's) that throws closes that connection; the process lives
// (the exception used to leave on_data and terminate it).
TEST(review_streams_DeathTest, a_hijack_init_that_throws_closes_the_connection) {
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

INSTANTIATE_TEST_SUITE_P(review_streams_loop, review_streams,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(review_threading_streams_blocking, review_streams,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(review_threading_streams_mixed, review_streams,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

// A reader that throws when told of an error (a common "if (ec) throw system_error(ec)"), on
// malformed chunked framing: the connection closes, the process lives (the exception used to
// escape into the loop and terminate it).
TEST(review_streams_DeathTest, a_reader_throwing_on_a_framing_error_closes_the_connection) {
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
