// Integration, threading: graceful shutdown(deadline) and stop(), called from the test thread
// while the loops (and, for blocking mode, connection threads) run.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>
#include <vector>

#include "support/conn_events.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t big = 8u << 20;

nbio::listen_options big_queue() {
  nbio::listen_options o;
  o.conn.max_write_queue = 64u << 20;
  return o;
}

// Queues `big` bytes on open for a client that has not started reading.
struct big_writer {
  conn_events* events;
  void on_open(nbio::conn& c) {
    for (std::size_t off = 0; off < big; off += 64u << 10)
      c.write(pattern(off, 64u << 10));
    events->opened.push(c.handle());
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(threading_shutdown, drains_pending_writes_to_a_client_that_reads_only_after_it_began) {
  conn_events events;
  test_server server(big_writer{&events}, big_queue());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));

  std::atomic<bool> began{false};
  auto finished = std::async(std::launch::async, [&] {
    began = true;
    return server.engine().shutdown(60s);
  });
  ASSERT_TRUE(wait_until([&] { return began.load(); }));
  std::this_thread::sleep_for(100ms);

  read_result r = recv_until_eof(fd.get(), 60s);
  EXPECT_TRUE(r.eof) << "errno " << r.error;
  EXPECT_EQ(r.data.size(), big);
  EXPECT_EQ(pattern_mismatch(r.data), std::string::npos);
  EXPECT_TRUE(finished.get()) << "shutdown() reports that a connection did not finish";
  EXPECT_FALSE(server.engine().running());
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
}

struct says_goodbye {
  conn_events* events;
  std::atomic<int>* shutdowns;
  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_shutdown(nbio::conn& c) {
    shutdowns->fetch_add(1);
    c.write("goodbye");
    c.close_after_flush();
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(threading_shutdown, calls_on_shutdown_and_lets_the_handler_finish) {
  conn_events events;
  std::atomic<int> shutdowns{0};
  test_server server(says_goodbye{&events, &shutdowns});
  std::vector<unique_fd> clients;
  for (int i = 0; i < 3; ++i)
    clients.push_back(connect_stream(server.address()));
  ASSERT_TRUE(events.opened.wait_for_size(3, 10s));

  EXPECT_TRUE(server.engine().shutdown(30s));
  EXPECT_EQ(shutdowns.load(), 3);
  for (auto& fd : clients) {
    read_result r = recv_until_eof(fd.get(), 10s);
    EXPECT_EQ(r.data, "goodbye");
    EXPECT_TRUE(r.eof);
  }
  ASSERT_TRUE(events.closed.wait_for_size(3, 10s));
  for (auto cause : events.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::local_close);
}

TEST(threading_shutdown, deadline_passing_returns_false_and_closes_with_shutdown) {
  conn_events events;
  test_server server(big_writer{&events}, big_queue());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);  // never reads
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  EXPECT_FALSE(server.engine().shutdown(300ms));
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::shutdown);
}

TEST(threading_shutdown, listener_stops_accepting_once_shutdown_returns) {
  conn_events events;
  test_server server(echo_handler{&events});
  const nbio::address addr = server.address();
  EXPECT_TRUE(server.engine().shutdown(10s));
  unique_fd fd = connect_stream(addr);
  if (fd) {  // a connect can only succeed into a dead backlog: it must not be served
    send_all(fd.get(), "anyone?", 1s);
    read_result r = recv_for(fd.get(), 300ms);
    EXPECT_EQ(r.data, "");
  } else {
    EXPECT_EQ(errno, ECONNREFUSED);
  }
  EXPECT_EQ(events.opened.size(), 0u);
}

TEST(threading_stop, closes_every_connection_with_shutdown) {
  conn_events events;
  test_server server(echo_handler{&events});
  std::vector<unique_fd> clients;
  for (int i = 0; i < 10; ++i)
    clients.push_back(connect_stream(server.address()));
  ASSERT_TRUE(events.opened.wait_for_size(10, 10s));

  server.engine().stop();
  EXPECT_FALSE(server.engine().running());
  ASSERT_EQ(events.closed.size(), 10u) << "stop() returned before every on_close ran";
  for (auto cause : events.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::shutdown);
  for (auto& fd : clients) {
    read_result r = recv_until_eof(fd.get(), 10s);
    EXPECT_TRUE(r.eof || r.error);
  }
  server.engine().stop();  // idempotent
  EXPECT_EQ(events.closed.size(), 10u);
}

TEST(threading_stop, closes_blocking_mode_connections_blocked_in_read) {
  conn_events events;
  test_server server(echo_handler{&events}, {.mode = nbio::io_mode::blocking});
  std::vector<unique_fd> clients;
  for (int i = 0; i < 5; ++i)
    clients.push_back(connect_stream(server.address()));
  ASSERT_TRUE(events.opened.wait_for_size(5, 10s));
  ASSERT_TRUE(send_all(clients[0].get(), "ping"));  // the threads are in read() now
  EXPECT_EQ(recv_exact(clients[0].get(), 4, 10s).data, "ping");

  server.engine().stop();  // must wake every thread blocked in read() (a hang ends in TIMEOUT)
  EXPECT_EQ(events.closed.size(), 5u);
  for (auto cause : events.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::shutdown);
  EXPECT_EQ(server.listener().blocking_online(), 0u);
}

TEST(threading_stop, wait_returns_after_stop_from_another_thread) {
  nbio::engine eng({.loops = 2});
  eng.listen("127.0.0.1:0", echo_handler{});
  eng.start();
  EXPECT_TRUE(eng.running());
  std::atomic<bool> waited{false};
  std::thread waiter([&] {
    eng.wait();
    waited = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(waited.load());
  eng.stop();
  waiter.join();
  EXPECT_TRUE(waited.load());
}

// Calls engine::stop() from inside a handler (a loop thread) on "stop".
struct stops_engine {
  conn_events* events;
  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_data(nbio::conn& c, std::string_view d) {
    if (d == "stop") c.owner_loop().owner().stop();  // only asks: the loop cannot join itself
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(threading_stop, stop_from_a_handler_asks_the_loops_to_stop_and_wait_returns) {
  conn_events events;
  nbio::engine eng({.loops = 2});
  auto& l = eng.listen("127.0.0.1:0", stops_engine{&events});
  eng.start();
  auto waited = std::async(std::launch::async, [&] { eng.wait(); });
  unique_fd fd = connect_stream(l.local_address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "stop"));
  const bool returned = waited.wait_for(20s) == std::future_status::ready;
  EXPECT_TRUE(returned) << "wait() did not return after stop() from a handler";
  if (!returned) eng.stop();  // unblock wait() so the test can end
  waited.get();
  EXPECT_FALSE(eng.running());
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::shutdown);
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.eof || r.error);
}

TEST(threading_stop, stop_from_a_blocking_mode_handler_does_not_join_its_own_thread) {
  conn_events events;
  nbio::engine eng({.loops = 1});
  auto& l = eng.listen("127.0.0.1:0", stops_engine{&events}, {.mode = nbio::io_mode::blocking});
  eng.start();
  auto waited = std::async(std::launch::async, [&] { eng.wait(); });
  unique_fd fd = connect_stream(l.local_address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "stop"));
  const bool returned = waited.wait_for(20s) == std::future_status::ready;
  EXPECT_TRUE(returned) << "wait() did not return after stop() from a blocking-mode handler";
  if (!returned) eng.stop();
  waited.get();
  EXPECT_FALSE(eng.running());
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::shutdown);
}

TEST(threading_stop, engine_destroyed_with_open_connections_closes_them) {
  conn_events events;
  unique_fd fd;
  {
    test_server server(echo_handler{&events});
    fd = connect_stream(server.address());
    ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  }
  ASSERT_EQ(events.closed.size(), 1u);
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::shutdown);
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.eof || r.error);
}

}  // namespace
