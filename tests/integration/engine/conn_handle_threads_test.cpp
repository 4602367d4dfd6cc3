// Integration, threading: conn_handle written from many threads at once, and racing a close.
// Run in both I/O modes: in blocking mode the connection's thread sits in a blocking read.
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "support/conn_events.hpp"
#include "support/io_mode_name.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr int writers = 8;
constexpr int messages_per_writer = 2000;

std::string message(int writer, int seq) {
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "w%d:%d\n", writer, seq);
  return std::string(buf, static_cast<std::size_t>(n));
}

class threading_conn_handle : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  nbio::listen_options options() const { return {.mode = GetParam(), .max_blocking_online = 16}; }
};

TEST_P(threading_conn_handle, writes_from_8_threads_keep_per_writer_order) {
  conn_events events;
  test_server server(echo_handler{&events}, options());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  const nbio::conn_handle h = events.opened.snapshot()[0];

  std::size_t expected_bytes = 0;
  for (int w = 0; w < writers; ++w)
    for (int i = 0; i < messages_per_writer; ++i)
      expected_bytes += message(w, i).size();

  std::atomic<int> failed_writes{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load())
        std::this_thread::yield();
      for (int i = 0; i < messages_per_writer; ++i)
        if (h.write(message(w, i))) failed_writes.fetch_add(1);
    });
  }
  go = true;
  read_result r = recv_exact(fd.get(), expected_bytes, 60s);
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failed_writes.load(), 0);
  ASSERT_EQ(r.data.size(), expected_bytes) << "eof " << r.eof << " errno " << r.error;

  // Each line whole, each writer's sequence numbers strictly in order and complete.
  std::vector<int> next(writers, 0);
  std::size_t pos = 0, lines = 0;
  while (pos < r.data.size()) {
    std::size_t end = r.data.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    std::string_view line(r.data.data() + pos, end - pos);
    std::size_t colon = line.find(':');
    ASSERT_TRUE(line.size() > 1 && line[0] == 'w' && colon != std::string_view::npos)
        << "torn message at byte " << pos << ": " << line;
    int w = -1, seq = -1;
    std::from_chars(line.data() + 1, line.data() + colon, w);
    std::from_chars(line.data() + colon + 1, line.data() + line.size(), seq);
    ASSERT_TRUE(w >= 0 && w < writers) << line;
    ASSERT_EQ(seq, next[w]) << "writer " << w << " out of order at byte " << pos;
    ++next[w];
    ++lines;
    pos = end + 1;
  }
  EXPECT_EQ(lines, static_cast<std::size_t>(writers * messages_per_writer));
}

TEST_P(threading_conn_handle, writes_racing_a_close_end_in_not_connected_without_crashing) {
  conn_events events;
  test_server server(echo_handler{&events}, options());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  const nbio::conn_handle h = events.opened.snapshot()[0];

  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    recv_until_eof(fd.get(), 30s);
    reader_done = true;
  });
  std::vector<std::error_code> last(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto deadline = std::chrono::steady_clock::now() + 20s;
      std::string msg = message(w, 0);
      while (std::chrono::steady_clock::now() < deadline) {
        std::error_code ec = h.write(msg);
        if (ec) {
          last[w] = ec;
          break;
        }
        std::this_thread::sleep_for(50us);  // bounded: the posted copies must not pile up
      }
    });
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(h.close());
  for (auto& t : threads)
    t.join();
  reader.join();
  EXPECT_TRUE(reader_done.load());
  for (int w = 0; w < writers; ++w)
    EXPECT_EQ(last[w], nbio::errc::not_connected) << "writer " << w << ": " << last[w].message();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::local_close);
  EXPECT_FALSE(h.alive());
}

// Writes through a handle to a peer that does not read are bounded by max_write_queue in both
// modes: in blocking mode what waits for the connection's thread (blocked in its write to the
// peer) is counted as a loop's queue is, then the write fails and the connection closes.
TEST_P(threading_conn_handle, writes_to_a_peer_that_does_not_read_stop_at_max_write_queue) {
  conn_events events;
  nbio::listen_options o = options();
  o.conn.max_write_queue = 256 * 1024;
  test_server server(echo_handler{&events}, o);
  unique_fd fd = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  const nbio::conn_handle h = events.opened.snapshot()[0];
  const std::string chunk(64 * 1024, 'q');
  std::error_code ec;
  int written = 0;
  std::thread writer([&] {  // a foreign thread, as a publisher would be
    for (; written < 1000 && !ec; ++written)
      ec = h.write(chunk);
  });
  writer.join();
  // Off the loop thread a write is posted, so the writer learns of the overflow only by the
  // writes after the close failing (not_connected), if it writes that long.
  EXPECT_TRUE(!ec || ec == nbio::errc::not_connected) << ec.message() << " after " << written;
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::write_queue_overflow);
}

INSTANTIATE_TEST_SUITE_P(io_modes, threading_conn_handle,
                         ::testing::Values(nbio::io_mode::nonblocking, nbio::io_mode::blocking),
                         io_mode_name);

}  // namespace
