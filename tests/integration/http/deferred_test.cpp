// Integration: responses finished later from other threads (response_writer::defer) and
// handlers on a thread_pool (on_pool), over real loopback sockets in the three I/O modes.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "nbio/http/on_pool.hpp"
#include "nbio/http/serve_mux.hpp"
#include "support/http_client.hpp"
#include "support/http_test_server.hpp"
#include "support/io_mode_name.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::http;

std::string get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

// Deferred responses finished by a thread of the test's own, in the order they were deferred.
struct finisher {
  std::mutex mutex;
  std::vector<std::pair<deferred_response, std::string>> queue;
  std::atomic<int> deferred{0};

  void add(deferred_response d, std::string body) {
    std::lock_guard lock(mutex);
    queue.emplace_back(std::move(d), std::move(body));
    ++deferred;
  }
  // Finishes everything queued so far from a new thread; waits for it.
  void finish_all() {
    std::thread([this] {
      std::lock_guard lock(mutex);
      for (auto& [d, body] : queue) {
        d.writer().write(body);
        d.finish();
      }
      queue.clear();
    }).join();
  }
};

class http_deferred : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  std::unique_ptr<http_test_server> serve(handler h, server_options config = {}) {
    return std::make_unique<http_test_server>(std::move(h), config, listen_for(GetParam()));
  }
};

// /slow defers, /fast answers at once: pipelined slow, fast, slow come back in request order,
// and nothing after the first slow one is answered before it is finished.
TEST_P(http_deferred, pipelined_responses_stay_in_order_around_a_deferred_one) {
  finisher f;
  auto srv = serve([&f](response_writer& w, request& r) {
    if (r.path() == "/slow") {
      w.set_header("X-Kind", "slow");
      f.add(w.defer(), "slow " + std::string(r.query("n")) + "\n");
    } else {
      w.write("fast\n");
    }
  });
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/slow?n=1") + get("/fast") + get("/slow?n=2")));
  ASSERT_TRUE(wait_until([&] { return f.deferred.load() == 1; }));
  EXPECT_TRUE(c.quiet_for(std::chrono::milliseconds(200))) << "answered before the deferred one";
  f.finish_all();
  auto r1 = c.read_response();
  ASSERT_TRUE(r1) << c.error();
  EXPECT_EQ(r1->body, "slow 1\n");
  EXPECT_EQ(r1->header("X-Kind").value_or(""), "slow");
  auto r2 = c.read_response();
  ASSERT_TRUE(r2) << c.error();
  EXPECT_EQ(r2->body, "fast\n");
  ASSERT_TRUE(wait_until([&] { return f.deferred.load() == 2; }));
  f.finish_all();
  auto r3 = c.read_response();
  ASSERT_TRUE(r3) << c.error();
  EXPECT_EQ(r3->body, "slow 2\n");
  // Keep-alive goes on.
  ASSERT_TRUE(c.send(get("/fast")));
  auto r4 = c.read_response();
  ASSERT_TRUE(r4) << c.error();
  EXPECT_EQ(r4->body, "fast\n");
}

// A deferred response can stream: flush() from the other thread sends chunks at once.
TEST_P(http_deferred, a_deferred_response_streams_chunks) {
  std::promise<deferred_response> handed;
  auto srv = serve([&handed](response_writer& w, request&) { handed.set_value(w.defer()); });
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/")));
  auto fut = handed.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  deferred_response d = fut.get();
  std::thread([&d] {
    d.writer().write("one ");
    d.writer().flush();
    d.writer().write("two");
    d.finish();
  }).join();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->framing, body_kind::chunked);
  EXPECT_EQ(r->body, "one two");
}

// Dropped unfinished: the client gets a 500 instead of waiting forever.
TEST_P(http_deferred, a_dropped_deferred_response_answers_500) {
  auto srv = serve([](response_writer& w, request&) {
    deferred_response d = w.defer();
    std::thread([d = std::move(d)]() mutable { d = deferred_response(); }).join();
  });
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 500);
}

// The work learns that its client went away.
TEST_P(http_deferred, client_connected_turns_false_when_the_client_closes) {
  std::promise<deferred_response> handed;
  auto srv = serve([&handed](response_writer& w, request&) { handed.set_value(w.defer()); });
  auto c = std::make_unique<http_client>(srv->address());
  ASSERT_TRUE(c->send(get("/")));
  auto fut = handed.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  deferred_response d = fut.get();
  EXPECT_TRUE(d.client_connected());
  c.reset();  // the client closes
  EXPECT_TRUE(wait_until([&] { return !d.client_connected(); }, std::chrono::seconds(10)));
  d.finish();  // harmless: the connection is gone
}

// Cancellation: on_client_gone fires once when the client leaves before the response is
// finished; one registered after that fires at once.
TEST_P(http_deferred, on_client_gone_fires_once_when_the_client_leaves) {
  std::promise<deferred_response> handed;
  std::atomic<int> fired{0};
  auto srv = serve([&](response_writer& w, request&) {
    deferred_response d = w.defer();
    d.on_client_gone([&fired] { fired.fetch_add(1); });
    d.on_client_gone([&fired] { fired.fetch_add(100); });  // a second one is ignored
    handed.set_value(std::move(d));
  });
  auto c = std::make_unique<http_client>(srv->address());
  ASSERT_TRUE(c->send(get("/")));
  auto fut = handed.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  deferred_response d = fut.get();
  EXPECT_EQ(fired.load(), 0);
  c.reset();  // the client closes
  EXPECT_TRUE(wait_until([&] { return fired.load() == 1; }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(fired.load(), 1);
  d.finish();  // harmless: the connection is gone
}

TEST_P(http_deferred, on_client_gone_does_not_fire_for_a_finished_response) {
  finisher f;
  std::atomic<int> fired{0};
  auto srv = serve([&](response_writer& w, request&) {
    deferred_response d = w.defer();
    d.on_client_gone([&fired] { fired.fetch_add(1); });
    f.add(std::move(d), "done\n");
  });
  {
    http_client c(srv->address());
    ASSERT_TRUE(c.send(get("/")));
    ASSERT_TRUE(wait_until([&] { return f.deferred.load() == 1; }));
    f.finish_all();
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->body, "done\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(fired.load(), 0);
}

// A pool handler blocked on slow work stops as soon as its client leaves (Go's
// Request.Context().Done()), and one registered after the client left hears of it at once.
TEST_P(http_deferred, a_pool_handler_is_cancelled_when_its_client_leaves) {
  nbio::thread_pool pool(1);
  std::promise<void> started;
  std::promise<bool> outcome;  // true: cancelled; false: timed out
  std::atomic<bool> late_fired{false};
  auto srv = serve(on_pool(pool, [&](response_writer& w, request&) {
    auto cancelled = std::make_shared<std::promise<void>>();
    auto fut = cancelled->get_future();
    EXPECT_TRUE(w.client_connected());
    w.on_client_gone([cancelled] { cancelled->set_value(); });
    started.set_value();
    const bool ok = fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    EXPECT_FALSE(w.client_connected());
    w.on_client_gone([&late_fired] { late_fired = true; });  // ignored: one per response
    outcome.set_value(ok);
  }));
  auto c = std::make_unique<http_client>(srv->address());
  ASSERT_TRUE(c->send(get("/slow")));
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  c.reset();
  auto o = outcome.get_future();
  ASSERT_EQ(o.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(o.get()) << "the pool handler never heard that its client left";
  EXPECT_FALSE(late_fired.load());
}

// on_pool: a handler blocked on the pool does not hold up the loop: another connection is
// answered meanwhile (the blocked handler waits for that answer before it returns).
TEST_P(http_deferred, a_blocked_pool_handler_does_not_block_other_connections) {
  nbio::thread_pool pool(2);
  std::promise<void> fast_answered;
  std::shared_future<void> released = fast_answered.get_future().share();
  serve_mux mux;
  mux.handle("GET /blocked/{id}", on_pool(pool, [released](response_writer& w, request& r) {
               released.wait_for(std::chrono::seconds(20));
               w.write("done " + r.path_value("id") + " " + std::string(r.header("X-Tag")) + "\n");
             }));
  mux.handle("GET /fast", [](response_writer& w, request&) { w.write("fast\n"); });
  auto srv = serve(mux.as_handler());
  http_client blocked(srv->address());
  ASSERT_TRUE(blocked.send("GET /blocked/a%20b HTTP/1.1\r\nHost: t\r\nX-Tag: t1\r\n\r\n"));
  http_client other(srv->address());
  ASSERT_TRUE(other.send(get("/fast")));
  auto f = other.read_response();
  ASSERT_TRUE(f) << other.error();
  EXPECT_EQ(f->body, "fast\n");
  fast_answered.set_value();
  auto b = blocked.read_response();
  ASSERT_TRUE(b) << blocked.error();
  EXPECT_EQ(b->body, "done a b t1\n") << "the copied request kept its path values and fields";
}

// A pool handler that throws gets a 500; the connection is still usable.
TEST_P(http_deferred, a_throwing_pool_handler_answers_500) {
  nbio::thread_pool pool(1);
  auto srv = serve(on_pool(pool, [](response_writer& w, request& r) {
    if (r.path() == "/throw") {
      w.write_header(200);
      w.write("partial");
      throw std::runtime_error("boom");
    }
    w.write(std::string(r.body()));
  }));
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/throw")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 500);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto e = c.read_response();
  ASSERT_TRUE(e) << c.error();
  EXPECT_EQ(e->body, "abc");
}

// A handler that defers and then throws: the deferred response is the one answer (no 500
// next to it), and the connection goes on in order.
TEST_P(http_deferred, a_handler_that_throws_after_defer_answers_once) {
  finisher f;
  auto srv = serve([&f](response_writer& w, request& r) {
    if (r.path() == "/defer-then-throw") {
      f.add(w.defer(), "deferred\n");
      throw std::runtime_error("after defer");
    }
    w.write("next\n");
  });
  http_client c(srv->address());
  ASSERT_TRUE(c.send(get("/defer-then-throw") + get("/next")));
  ASSERT_TRUE(wait_until([&] { return f.deferred.load() == 1; }));
  f.finish_all();
  auto r1 = c.read_response();
  ASSERT_TRUE(r1) << c.error();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "deferred\n");
  auto r2 = c.read_response();
  ASSERT_TRUE(r2) << c.error();
  EXPECT_EQ(r2->body, "next\n");
}

// A client that pipelines requests and does not read: past the backpressure bound the server
// stops serving them (the handler is not called for all of them while nothing is read), and
// once the client reads, every one is answered, in order. Event-loop modes only: in blocking
// mode the handler's write blocks its thread instead (no queue to hold back), so the case is
// not instantiated there.
class http_deferred_backpressure : public http_deferred {};

TEST_P(http_deferred_backpressure, unread_pipelined_responses_hold_back_further_requests) {
  std::atomic<int> handled{0};
  const std::string big(64 * 1024, 'x');
  auto srv = serve([&](response_writer& w, request&) {
    ++handled;
    w.write(big);
  });
  http_client c(srv->address());
  constexpr int requests = 400;  // 25 MiB of responses
  std::string all;
  for (int i = 0; i < requests; ++i)
    all += get("/big");
  ASSERT_TRUE(c.send(all));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LT(handled.load(), requests / 4) << "served while the client read nothing";
  for (int i = 0; i < requests; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << ": " << c.error();
    ASSERT_EQ(r->body.size(), big.size()) << i;
  }
  EXPECT_EQ(handled.load(), requests);
}

INSTANTIATE_TEST_SUITE_P(http_threading_deferred_loop, http_deferred,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_deferred_blocking, http_deferred,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_deferred_mixed, http_deferred,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);
INSTANTIATE_TEST_SUITE_P(http_threading_deferred_loop, http_deferred_backpressure,
                         ::testing::Values(nbio::io_mode::nonblocking, nbio::io_mode::mixed),
                         io_mode_name);

// The recorder supports defer() too (handlers are testable without a socket).
TEST(http_response_recorder, records_a_deferred_response) {
  response_recorder rec;
  deferred_response d = rec.writer().defer();
  std::thread([&d] {
    d.writer().write_header(202);
    d.writer().write("later");
    d.finish();
  }).join();
  rec.finish();
  EXPECT_EQ(rec.status(), 202);
  EXPECT_EQ(rec.body(), "later");
}

}  // namespace
