// Integration: the write-queue cap (backpressure against slow readers) and on_drained.
#include <gtest/gtest.h>

#include <atomic>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t chunk = 64u << 10;
constexpr std::size_t cap = 256u << 10;
constexpr std::size_t max_chunks = 1024;  // 64 MiB: far past any kernel buffering

struct overflow_state {
  event_log<std::error_code> write_errors;
  event_log<std::error_code> closed;
  std::atomic<std::size_t> accepted_bytes{0};
  std::atomic<bool> open_after_reject{false};
  std::atomic<int> drained{0};
};

// Writes chunks in on_open until a write fails (the client never reads).
struct overflow_writer {
  overflow_state* s;

  void on_open(nbio::conn& c) {
    std::size_t off = 0;
    std::error_code failed;
    for (std::size_t i = 0; i < max_chunks && !failed; ++i) {
      failed = c.write(pattern(off, chunk));
      if (!failed) off += chunk;
    }
    s->accepted_bytes.store(off);
    s->open_after_reject.store(c.is_open());
    if (failed) s->write_errors.push(failed);  // last: the test thread waits on it
  }
  void on_drained(nbio::conn& c) {
    // With overflow_policy::reject: once the reader caught up, finish with a marker.
    if (s->drained.fetch_add(1) == 0 && s->write_errors.size() == 1) {
      c.write("END");
      c.close_after_flush();
    }
  }
  void on_close(nbio::conn&, std::error_code cause) { s->closed.push(cause); }
};

// The queue exists in event-loop mode only (blocking mode writes directly): edge and level.
class write_queue : public ::testing::TestWithParam<conn_mode> {};

TEST_P(write_queue, slow_reader_overflows_the_cap_and_closes_with_write_queue_overflow) {
  overflow_state s;
  nbio::listen_options opts;
  opts.conn.max_write_queue = cap;
  test_server server(overflow_writer{&s}, opts, GetParam().engine());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(fd);

  ASSERT_TRUE(s.write_errors.wait_for_size(1, 10s)) << "no write failed: the cap is not enforced";
  EXPECT_EQ(s.write_errors.snapshot()[0], nbio::errc::write_queue_overflow);
  EXPECT_LT(s.accepted_bytes.load(), max_chunks * chunk);
  ASSERT_TRUE(s.closed.wait_for_size(1, 10s));
  EXPECT_EQ(s.closed.snapshot()[0], nbio::errc::write_queue_overflow);
  EXPECT_FALSE(s.open_after_reject.load());
}

TEST_P(write_queue, reject_policy_drops_the_write_and_keeps_the_connection) {
  overflow_state s;
  nbio::listen_options opts;
  opts.conn.max_write_queue = cap;
  opts.conn.on_overflow = nbio::overflow_policy::reject;
  test_server server(overflow_writer{&s}, opts, GetParam().engine());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(fd);

  ASSERT_TRUE(s.write_errors.wait_for_size(1, 10s)) << "no write was rejected";
  EXPECT_EQ(s.write_errors.snapshot()[0], nbio::errc::write_queue_overflow);
  EXPECT_TRUE(s.open_after_reject.load()) << "reject must keep the connection";
  // Under io_uring the queue also holds what the kernel has not yet been offered, so the kernel
  // may take all of it at once: the connection may have drained, written its marker and closed
  // (local_close) already. It must never have been closed for the overflow.
  for (const auto& ec : s.closed.snapshot())
    EXPECT_NE(ec, nbio::errc::write_queue_overflow) << "reject closed the connection";

  // Everything accepted arrives, in order, without the rejected chunk; then the marker.
  read_result r = recv_until_eof(fd.get(), 30s);
  EXPECT_TRUE(r.eof);
  const std::size_t accepted = s.accepted_bytes.load();
  ASSERT_EQ(r.data.size(), accepted + 3);
  EXPECT_EQ(pattern_mismatch(r.data.substr(0, accepted)), std::string::npos);
  EXPECT_EQ(r.data.substr(accepted), "END");
  ASSERT_TRUE(s.closed.wait_for_size(1, 10s));
  EXPECT_EQ(s.closed.snapshot()[0], nbio::errc::local_close);
}

struct drain_watcher {
  event_log<std::size_t>* drained_with;  // queued_bytes() seen inside on_drained
  std::atomic<std::size_t>* queued_after_open;
  std::size_t bytes;

  void on_open(nbio::conn& c) {
    for (std::size_t off = 0; off < bytes; off += chunk)
      c.write(pattern(off, chunk));
    queued_after_open->store(c.queued_bytes() + 1);  // +1: "on_open ran"
  }
  void on_drained(nbio::conn& c) { drained_with->push(c.queued_bytes()); }
};

TEST_P(write_queue, on_drained_fires_once_the_queued_write_is_flushed) {
  event_log<std::size_t> drained_with;
  std::atomic<std::size_t> queued_after_open{0};
  const std::size_t bytes = 8u << 20;
  nbio::listen_options opts;
  opts.conn.max_write_queue = 64u << 20;
  test_server server(drain_watcher{&drained_with, &queued_after_open, bytes}, opts,
                     GetParam().engine());
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(wait_until([&] { return queued_after_open.load() > 0; }));
  ASSERT_GT(queued_after_open.load(), 1u) << "the kernel took 8 MiB at once: nothing queued";

  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(drained_with.size(), 0u) << "on_drained before the reader read anything";

  read_result r = recv_exact(fd.get(), bytes, 30s);
  ASSERT_EQ(r.data.size(), bytes);
  EXPECT_EQ(pattern_mismatch(r.data), std::string::npos);
  ASSERT_TRUE(drained_with.wait_for_size(1, 10s)) << "on_drained never fired";
  EXPECT_EQ(drained_with.snapshot()[0], 0u);
}

INSTANTIATE_TEST_SUITE_P(loop, write_queue, ::testing::Values(edge_mode, level_mode),
                         conn_mode_name);

}  // namespace
