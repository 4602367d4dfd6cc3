// Integration: half-closed TCP connections, from either side, in every way a connection can be
// served (edge- and level-triggered loops, blocking mode).
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

class half_close : public ::testing::TestWithParam<conn_mode> {};

TEST_P(half_close, peer_shutdown_write_gets_the_rest_echoed_then_eof) {
  conn_events events;
  test_server server(echo_handler{&events}, GetParam().listen(), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  // Large enough that the echo is still queued on the server when the FIN arrives.
  const std::string payload = random_payload(1u << 20, 1);
  ASSERT_TRUE(send_all(fd.get(), payload, 30s));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);

  read_result r = recv_until_eof(fd.get(), 30s);
  EXPECT_TRUE(r.eof) << "errno " << r.error << ", timed out " << r.timed_out;
  EXPECT_EQ(r.data.size(), payload.size());
  EXPECT_TRUE(r.data == payload) << "echo differs";
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::eof);
}

TEST_P(half_close, small_write_and_fin_in_one_segment_still_reports_eof) {
  // The bytes and the FIN arrive together: the read that returns the bytes is short, and the
  // FIN behind it must still be noticed (no further readiness edge comes for it).
  conn_events events;
  test_server server(echo_handler{&events}, GetParam().listen(), GetParam().engine());
  for (int i = 0; i < 20; ++i) {
    unique_fd fd = connect_stream(server.address());
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), "last"));
    ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
    read_result r = recv_until_eof(fd.get(), 10s);
    ASSERT_EQ(r.data, "last") << "connection " << i;
    ASSERT_TRUE(r.eof) << "connection " << i << ": the server never saw the FIN";
  }
}

// on_end keeps the connection half-open: the server may still write, now and later.
struct half_open_writer {
  conn_events* events;
  std::atomic<int>* ends;

  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  void on_end(nbio::conn& c) {
    ends->fetch_add(1);
    EXPECT_TRUE(c.is_open());
    EXPECT_FALSE(c.write("end-seen;"));
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST_P(half_close, on_end_keeps_the_connection_half_open_and_writable) {
  conn_events events;
  std::atomic<int> ends{0};
  test_server server(half_open_writer{&events, &ends}, GetParam().listen(), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "abc"));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);

  EXPECT_EQ(recv_exact(fd.get(), 12, 10s).data, "abcend-seen;");
  EXPECT_EQ(ends.load(), 1);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(events.closed.size(), 0u) << "closed although on_end kept it open";

  // Later, from another thread: still writable, then closed by us.
  nbio::conn_handle h = events.opened.snapshot()[0];
  EXPECT_FALSE(h.write("later;"));
  EXPECT_FALSE(h.close_after_flush());
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_EQ(r.data, "later;");
  EXPECT_TRUE(r.eof);
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::local_close);
}

// The server half-closes: its queued bytes go out first, then FIN, and it keeps reading.
struct write_then_shutdown {
  conn_events* events;
  std::size_t bytes;

  void on_open(nbio::conn& c) {
    EXPECT_FALSE(c.write(pattern(0, bytes)));
    c.shutdown_write();
  }
  void on_data(nbio::conn&, std::string_view d) { events->bytes_in.fetch_add(d.size()); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST_P(half_close, shutdown_write_sends_fin_after_the_queue_and_keeps_reading) {
  conn_events events;
  const std::size_t bytes = 4u << 20;
  test_server server(write_then_shutdown{&events, bytes},
                     GetParam().listen({.max_write_queue = 16u << 20}), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);

  read_result r = recv_until_eof(fd.get(), 30s);
  EXPECT_TRUE(r.eof) << "no FIN after the queued data";
  EXPECT_EQ(r.data.size(), bytes);
  EXPECT_EQ(pattern_mismatch(r.data), std::string::npos);

  ASSERT_TRUE(send_all(fd.get(), "still reading"));
  EXPECT_TRUE(wait_until([&] { return events.bytes_in.load() == 13; }, 10s))
      << "server read " << events.bytes_in.load() << " bytes after its half-close";
  EXPECT_EQ(events.closed.size(), 0u);
  fd.reset();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::eof);
}

INSTANTIATE_TEST_SUITE_P(loop, half_close, ::testing::Values(edge_mode, level_mode),
                         conn_mode_name);
INSTANTIATE_TEST_SUITE_P(threading_blocking, half_close, ::testing::Values(blocking_mode),
                         conn_mode_name);

// Keeps the connection after the peer's FIN and shuts its own side: both directions are done.
struct half_close_then_shutdown {
  conn_events* events;
  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_end(nbio::conn& c) { c.shutdown_write(); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

class half_close_trigger : public ::testing::TestWithParam<nbio::trigger_mode> {};

TEST_P(half_close_trigger, both_directions_shut_closes_with_eof_instead_of_spinning) {
  conn_events events;
  test_server server(half_close_then_shutdown{&events}, {}, {.loops = 1, .trigger = GetParam()});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  read_result r = recv_until_eof(fd.get(), 10s);  // our FIN comes back from shutdown_write
  EXPECT_TRUE(r.eof);
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s)) << "the half-closed pair was never closed";
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::eof);
}

INSTANTIATE_TEST_SUITE_P(loop, half_close_trigger,
                         ::testing::Values(nbio::trigger_mode::edge, nbio::trigger_mode::level),
                         [](const auto& info) {
                           return info.param == nbio::trigger_mode::edge ? "edge" : "level";
                         });

}  // namespace
