// Integration: conn_handle from the test thread; stale handles after close and slot reuse.
#include <gtest/gtest.h>

#include <atomic>

#include "support/conn_events.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

TEST(conn_handle, default_constructed_handle_names_no_connection) {
  nbio::conn_handle h;
  EXPECT_FALSE(h);
  EXPECT_EQ(h, nbio::conn_handle());
}

TEST(conn_handle, write_from_another_thread_reaches_the_peer) {
  conn_events events;
  test_server server(echo_handler{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  nbio::conn_handle h = events.opened.snapshot()[0];
  EXPECT_TRUE(h);
  EXPECT_TRUE(h.alive());
  EXPECT_FALSE(h.write("from the test thread"));
  EXPECT_EQ(recv_exact(fd.get(), 20, 10s).data, "from the test thread");
}

TEST(conn_handle, close_after_flush_delivers_the_queued_write_then_eof) {
  conn_events events;
  test_server server(echo_handler{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  nbio::conn_handle h = events.opened.snapshot()[0];
  EXPECT_FALSE(h.write("bye"));
  EXPECT_FALSE(h.close_after_flush());
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_EQ(r.data, "bye");
  EXPECT_TRUE(r.eof);
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::local_close);
}

TEST(conn_handle, dispatch_runs_on_the_connection_thread) {
  conn_events events;
  test_server server(echo_handler{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  nbio::conn_handle h = events.opened.snapshot()[0];
  std::atomic<int> ran{0};
  EXPECT_FALSE(h.dispatch([&](nbio::conn& c) {
    EXPECT_TRUE(c.owner_loop().in_loop_thread());
    EXPECT_EQ(c.handle(), h);
    ran = 1;
  }));
  EXPECT_TRUE(wait_until([&] { return ran.load() == 1; }));
}

void expect_stale(const nbio::conn_handle& h) {
  EXPECT_TRUE(h) << "a stale handle still names its slot";
  EXPECT_FALSE(h.alive());
  EXPECT_EQ(h.write("x"), nbio::errc::not_connected);
  EXPECT_EQ(h.close(), nbio::errc::not_connected);
  EXPECT_EQ(h.close_after_flush(), nbio::errc::not_connected);
  bool ran = false;
  EXPECT_EQ(h.dispatch([&](nbio::conn&) { ran = true; }), nbio::errc::not_connected);
  EXPECT_FALSE(ran);
}

TEST(conn_handle, stale_handle_after_close_returns_not_connected) {
  conn_events events;
  test_server server(echo_handler{&events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  nbio::conn_handle h = events.opened.snapshot()[0];
  fd.reset();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  ASSERT_TRUE(wait_until([&] { return !h.alive(); }, 10s)) << "slot never freed";
  expect_stale(h);
}

TEST(conn_handle, stale_handle_after_slot_reuse_does_not_reach_the_new_connection) {
  conn_events events;
  // One loop: the freed slot is the one the next connection gets.
  test_server server(echo_handler{&events}, {}, {.loops = 1});
  unique_fd first = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  nbio::conn_handle old = events.opened.snapshot()[0];
  first.reset();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  ASSERT_TRUE(wait_until([&] { return !old.alive(); }, 10s));

  unique_fd second = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(2, 10s));
  nbio::conn_handle fresh = events.opened.snapshot()[1];
  EXPECT_NE(old, fresh);
  EXPECT_TRUE(fresh.alive());
  expect_stale(old);  // write, close and dispatch on the old handle: none may touch `second`

  EXPECT_FALSE(fresh.write("fresh"));
  read_result r = recv_for(second.get(), 300ms);
  EXPECT_EQ(r.data, "fresh") << "the stale handle wrote into the new connection";
  EXPECT_FALSE(r.eof) << "the stale handle closed the new connection";
  EXPECT_TRUE(fresh.alive());
  ASSERT_TRUE(send_all(second.get(), "echo"));
  EXPECT_EQ(recv_exact(second.get(), 4, 10s).data, "echo");
}

}  // namespace
