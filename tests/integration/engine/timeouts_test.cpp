// Integration: read, write and idle timeouts and per-connection deadlines, each closing with its
// own errc. Timeouts are short; the waits for them are long bounds, never timings.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <thread>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

// Read, idle and read-deadline timeouts in every serving mode; write timeouts (a queue that
// stays unsent) concern the event loop only.
class timeouts : public ::testing::TestWithParam<conn_mode> {
 protected:
  nbio::listen_options with_conn(nbio::conn_options c) const { return GetParam().listen(c); }
  nbio::engine_options engine() const { return GetParam().engine(); }
};

class write_timeouts : public timeouts {};

// User plus system CPU time of this process so far.
double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Connects, stays silent and returns the server's close cause.
std::error_code silent_client_close_cause(test_server& server, conn_events& events) {
  unique_fd fd = connect_stream(server.address());
  EXPECT_TRUE(fd);
  if (!events.closed.wait_for_size(1, 20s)) return {};
  read_result r = recv_until_eof(fd.get(), 10s);
  EXPECT_TRUE(r.eof || r.error) << "the client did not see the close";
  return events.closed.snapshot()[0];
}

TEST_P(timeouts, read_timeout_closes_a_silent_connection) {
  conn_events events;
  test_server server(echo_handler{&events}, with_conn({.read_timeout = 200ms}), engine());
  EXPECT_EQ(silent_client_close_cause(server, events), nbio::errc::read_timeout);
}

TEST_P(timeouts, idle_timeout_closes_a_silent_connection) {
  conn_events events;
  test_server server(echo_handler{&events}, with_conn({.idle_timeout = 200ms}), engine());
  EXPECT_EQ(silent_client_close_cause(server, events), nbio::errc::idle_timeout);
}

// Sends a byte every 50 ms for `span`; each is echoed. True when the connection survived.
bool trickle(int fd, std::chrono::milliseconds span) {
  auto end = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < end) {
    if (!send_all(fd, "t", 5s) || recv_exact(fd, 1, 5s).data != "t") return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

TEST_P(timeouts, read_timeout_is_pushed_back_by_every_read) {
  conn_events events;
  test_server server(echo_handler{&events}, with_conn({.read_timeout = 1000ms}), engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(trickle(fd.get(), 2000ms)) << "closed although bytes kept arriving";
  EXPECT_EQ(events.closed.size(), 0u);
  ASSERT_TRUE(events.closed.wait_for_size(1, 20s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::read_timeout);
}

TEST_P(timeouts, idle_timeout_is_pushed_back_by_traffic) {
  conn_events events;
  test_server server(echo_handler{&events}, with_conn({.idle_timeout = 1000ms}), engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(trickle(fd.get(), 2000ms)) << "closed although traffic kept flowing";
  EXPECT_EQ(events.closed.size(), 0u);
  ASSERT_TRUE(events.closed.wait_for_size(1, 20s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::idle_timeout);
}

TEST_P(timeouts, timeouts_past_24_days_are_clamped_not_immediate) {
  // 30 days is past 2^31 ms: unclamped, the deadline would wrap into the past and fire at once.
  conn_events events;
  const auto month = std::chrono::milliseconds(30ll * 24 * 3600 * 1000);
  test_server server(
      echo_handler{&events},
      with_conn({.read_timeout = month, .write_timeout = month, .idle_timeout = month}), engine());
  std::this_thread::sleep_for(20ms);  // the loop clock is past 0 when the deadlines are set
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "still open"));
  EXPECT_EQ(recv_exact(fd.get(), 10, 10s).data, "still open");

  // Idle now: a deadline that wrapped into the past would fire, be found not due, re-arm and
  // fire again, spinning the loop. A quiet process uses a few percent of one core at most.
  const double cpu = process_cpu_seconds();
  std::this_thread::sleep_for(500ms);
  EXPECT_LT(process_cpu_seconds() - cpu, 0.25) << "the loop spins on an idle connection";
  EXPECT_EQ(events.closed.size(), 0u);
}

// Queues 8 MiB for a client that never reads; optionally sets a write deadline.
struct stuck_writer {
  conn_events* events;
  std::chrono::milliseconds write_deadline{0};

  void on_open(nbio::conn& c) {
    for (std::size_t off = 0; off < (8u << 20); off += 64u << 10)
      c.write(pattern(off, 64u << 10));
    if (write_deadline.count()) c.set_write_deadline(write_deadline);
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST_P(write_timeouts, write_timeout_closes_when_queued_data_stays_unsent) {
  conn_events events;
  test_server server(stuck_writer{&events},
                     with_conn({.write_timeout = 200ms, .max_write_queue = 64u << 20}), engine());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(events.closed.wait_for_size(1, 20s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::write_timeout);
}

TEST_P(write_timeouts, set_write_deadline_closes_with_write_timeout) {
  conn_events events;
  test_server server(stuck_writer{&events, 200ms}, with_conn({.max_write_queue = 64u << 20}),
                     engine());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(events.closed.wait_for_size(1, 20s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::write_timeout);
}

// Sets read deadlines in on_open: `first`, then `second` (0 clears) when non-negative.
struct deadline_setter {
  conn_events* events;
  std::chrono::milliseconds first;
  std::chrono::milliseconds second{-1};

  void on_open(nbio::conn& c) {
    c.set_read_deadline(first);
    if (second.count() >= 0) c.set_read_deadline(second);
  }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

TEST_P(timeouts, set_read_deadline_closes_with_read_timeout) {
  conn_events events;
  test_server server(deadline_setter{&events, 200ms}, with_conn({}), engine());
  EXPECT_EQ(silent_client_close_cause(server, events), nbio::errc::read_timeout);
}

TEST_P(timeouts, set_read_deadline_overrides_a_longer_listener_read_timeout) {
  conn_events events;
  test_server server(deadline_setter{&events, 200ms}, with_conn({.read_timeout = 600s}), engine());
  EXPECT_EQ(silent_client_close_cause(server, events), nbio::errc::read_timeout);
}

TEST_P(timeouts, set_read_deadline_of_zero_clears_the_deadline) {
  conn_events events;
  test_server server(deadline_setter{&events, 100ms, 0ms}, with_conn({}), engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(fd);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(events.closed.size(), 0u) << "a cleared deadline fired";
  ASSERT_TRUE(send_all(fd.get(), "alive"));
  EXPECT_EQ(recv_exact(fd.get(), 5, 10s).data, "alive");
  fd.reset();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::eof);
}

// Closes on the first byte and then sets deadlines, which must not put the (soon freed) slot
// back into the timer wheel.
struct close_then_set_deadlines {
  conn_events* events;
  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_data(nbio::conn& c, std::string_view) {
    c.close();
    c.set_read_deadline(20ms);
    c.set_write_deadline(20ms);
  }
  void on_close(nbio::conn& c, std::error_code cause) {
    c.set_read_deadline(10ms);
    events->closed.push(cause);
  }
};

TEST(timeouts_slot_reuse, deadline_set_after_close_does_not_rearm_a_freed_slot) {
  conn_events events;
  test_server server(close_then_set_deadlines{&events}, {}, {.loops = 1});
  // Many connections through the same few slots: a stale wheel entry would corrupt the wheel
  // or fire on a reused slot (ASan shows it; here it shows as wrong or missing closes).
  for (int i = 0; i < 50; ++i) {
    unique_fd fd = connect_stream(server.address());
    ASSERT_TRUE(send_all(fd.get(), "x"));
    read_result r = recv_until_eof(fd.get(), 10s);
    EXPECT_TRUE(r.eof || r.error) << "connection " << i;
  }
  std::this_thread::sleep_for(100ms);  // let any stale deadline fire
  ASSERT_TRUE(events.closed.wait_for_size(50, 10s));
  for (const auto& cause : events.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::local_close);
  EXPECT_EQ(server.engine().stats().total.online, 0u);
}

INSTANTIATE_TEST_SUITE_P(loop, timeouts, ::testing::Values(edge_mode, level_mode), conn_mode_name);
INSTANTIATE_TEST_SUITE_P(loop, write_timeouts, ::testing::Values(edge_mode, level_mode),
                         conn_mode_name);
INSTANTIATE_TEST_SUITE_P(threading_blocking, timeouts, ::testing::Values(blocking_mode),
                         conn_mode_name);

}  // namespace
