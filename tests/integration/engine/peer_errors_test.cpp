// Integration: the peer goes away abruptly; the server reports the errno, never crashes and
// never raises SIGPIPE (which would kill this process).
#include <gtest/gtest.h>

#include <cerrno>
#include <system_error>

#include "support/conn_events.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

bool is_reset_or_broken_pipe(std::error_code ec) {
  return ec == std::errc::connection_reset || ec == std::errc::broken_pipe;
}

// Queues `bytes` in on_open (the peer does not read) and records how much stayed queued.
struct flooder {
  conn_events* events;
  std::atomic<std::size_t>* queued;
  std::size_t bytes;

  void on_open(nbio::conn& c) {
    for (std::size_t off = 0; off < bytes; off += 64u << 10)
      c.write(pattern(off, 64u << 10));
    queued->store(c.queued_bytes());
  }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(peer_errors, peer_reset_mid_write_reports_econnreset_or_epipe) {
  conn_events events;
  std::atomic<std::size_t> queued{0};
  nbio::listen_options opts;
  opts.conn.max_write_queue = 64u << 20;
  test_server server(flooder{&events, &queued, 8u << 20}, opts);
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(wait_until([&] { return queued.load() > 0; }, 10s)) << "nothing queued";

  set_reset_on_close(fd.get());
  fd.reset();  // RST while the server holds megabytes for us
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  std::error_code cause = events.closed.snapshot()[0];
  EXPECT_TRUE(is_reset_or_broken_pipe(cause)) << cause.category().name() << ": " << cause.message();
  EXPECT_EQ(cause.category(), std::generic_category());

  // The engine is unharmed.
  unique_fd next = connect_stream(server.address());
  ASSERT_TRUE(send_all(next.get(), "ok"));
  // The flooder writes its pattern first, then echoes.
  read_result r = recv_exact(next.get(), (8u << 20) + 2, 30s);
  EXPECT_EQ(r.data.size(), (8u << 20) + 2);
  EXPECT_EQ(r.data.substr(8u << 20), "ok");
}

// Keeps writing through a handle after the peer's FIN until the write fails: the first write
// after the peer closed draws an RST, the next ones fail with EPIPE.
struct write_after_end {
  conn_events* events;

  struct tick {
    nbio::conn_handle h;
    nbio::loop* l;
    int left;
    void operator()() const {
      if (h.write(std::string(1024, 'w')) || left == 0) return;
      l->add_timer(5ms, tick{h, l, left - 1});
    }
  };
  void on_end(nbio::conn& c) { tick{c.handle(), &c.owner_loop(), 2000}(); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(peer_errors, write_to_a_closed_peer_reports_epipe_or_reset_without_sigpipe) {
  conn_events events;
  test_server server(write_after_end{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(wait_until([&] { return server.listener().online() == 1; }));
  fd.reset();  // FIN; anything the server sends now is answered with RST
  ASSERT_TRUE(events.closed.wait_for_size(1, 20s));
  std::error_code cause = events.closed.snapshot()[0];
  EXPECT_TRUE(is_reset_or_broken_pipe(cause)) << cause.category().name() << ": " << cause.message();
}

struct write_in_on_close {
  event_log<std::error_code>* write_results;
  void on_close(nbio::conn& c, std::error_code) {
    EXPECT_FALSE(c.is_open());
    write_results->push(c.write("too late"));
  }
};

TEST(peer_errors, write_inside_on_close_returns_not_connected) {
  event_log<std::error_code> results;
  test_server server(write_in_on_close{&results});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(wait_until([&] { return server.listener().online() == 1; }));
  fd.reset();
  ASSERT_TRUE(results.wait_for_size(1, 10s));
  EXPECT_EQ(results.snapshot()[0], nbio::errc::not_connected);
}

struct close_twice {
  conn_events* events;
  void on_data(nbio::conn& c, std::string_view) {
    c.close(std::make_error_code(std::errc::protocol_error));
    c.close();  // idempotent: the first cause wins
    c.close(nbio::errc::idle_timeout);
    EXPECT_FALSE(c.is_open());
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST(peer_errors, close_is_idempotent_and_reports_the_first_cause_once) {
  conn_events events;
  test_server server(close_twice{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "x"));
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.eof || r.error) << "the server did not close";
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(events.closed.size(), 1u) << "on_close ran more than once";
  EXPECT_EQ(events.closed.snapshot()[0], std::errc::protocol_error);
}

}  // namespace
