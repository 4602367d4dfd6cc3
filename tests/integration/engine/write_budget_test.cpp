// Integration: the engine-wide write budget (engine_options::max_write_queue_total). Clients that
// never read ask for a queue of some KiB ("Q<KiB>"); the server writes until its queue holds that
// much (the kernel's buffers take a varying share first). Past the budget the loop closes its
// largest queue with errc::write_queue_overflow; a client that reads (small queue) keeps its
// connection.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "support/conn_mode.hpp"
#include "support/event_log.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t chunk = 64u << 10;
constexpr std::size_t budget = 4u << 20;

// "Q<n>": write 64 KiB chunks until n KiB are queued; anything else is echoed.
struct bulk_server {
  struct conn_data {
    std::size_t kib = 0;  // the queue the connection asked for; 0: an echo client
  };
  event_log<std::pair<std::size_t, std::error_code>>* closed;  // {kib, cause}

  void on_data(nbio::conn& c, std::string_view d) {
    if (d.size() < 2 || d[0] != 'Q') {
      c.write(d);
      return;
    }
    const std::size_t kib = std::stoul(std::string(d.substr(1)));
    c.data<conn_data>().kib = kib;
    fill(c, 50);
  }
  // Writes until the queue holds kib KiB. Under io_uring the queue also holds what the kernel
  // has not yet been offered (the turn's sends go out after the handler returns), so it is
  // topped up a few milliseconds later, after the kernel's buffers took their share.
  void fill(nbio::conn& c, int refills) {
    const std::size_t want = c.data<conn_data>().kib << 10;
    // Bounded: 256 MiB, far past any kernel buffering.
    for (std::size_t off = 0; off < (256u << 20) && c.is_open() && c.queued_bytes() < want;
         off += chunk)
      c.write(pattern(off, chunk));
    if (refills == 0 || !c.is_open()) return;
    c.owner_loop().add_timer(std::chrono::milliseconds(2), [this, h = c.handle(), refills] {
      h.post([this, refills](nbio::conn& pc) { fill(pc, refills - 1); });
    });
  }
  void on_close(nbio::conn& c, std::error_code cause) {
    closed->push({c.data<conn_data>().kib, cause});
  }
};

bool echo_once(int fd, std::string_view text) {
  return send_all(fd, text) && recv_exact(fd, text.size(), 10s).data == text;
}

class write_budget : public ::testing::TestWithParam<conn_mode> {
 protected:
  nbio::engine_options config(std::size_t total) const {
    nbio::engine_options c = GetParam().engine();
    c.loops = 1;  // every connection on one loop: the victim is chosen among all of them
    c.max_write_queue_total = total;
    return c;
  }
  static nbio::listen_options options() {
    nbio::listen_options o;
    o.conn.max_write_queue = 64u << 20;  // far past the budget: only the budget closes
    return o;
  }
};

TEST_P(write_budget, write_past_the_budget_closes_the_largest_queue_not_the_writer) {
  event_log<std::pair<std::size_t, std::error_code>> closed;
  test_server server(bulk_server{&closed}, options(), config(budget));
  unique_fd reader = connect_stream(server.address());
  ASSERT_TRUE(echo_once(reader.get(), "hello"));

  // 3 MiB queued for the first hog; the second's 2 MiB take the total past 4 MiB while its own
  // queue is still the smaller one.
  unique_fd big = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(send_all(big.get(), "Q3072"));
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().write_queued >= (3u << 20); }))
      << "queued: " << server.engine().stats().write_queued;
  unique_fd small = connect_small_rcvbuf(server.address(), 4096);
  ASSERT_TRUE(send_all(small.get(), "Q2048"));

  ASSERT_TRUE(closed.wait_for_size(1, 10s)) << "nothing closed past the budget";
  const auto first = closed.snapshot()[0];
  EXPECT_EQ(first.first, 3072u) << "the victim is not the largest queue";
  EXPECT_EQ(first.second, nbio::errc::write_queue_overflow) << first.second.message();
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.write_budget_closes == 1; }));

  // The writer keeps its queue; the reader its connection; the total is back under the budget.
  EXPECT_TRUE(echo_once(reader.get(), "still served"));
  EXPECT_EQ(closed.size(), 1u);
  EXPECT_LE(server.engine().stats().write_queued, budget);
  // (Under io_uring the kernel may take the whole queue before fill() tops it up again.)
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().write_queued > 0; }))
      << "the second hog's queue is gone";
}

TEST_P(write_budget, many_hogs_stay_within_the_budget_and_a_reader_keeps_its_echoes) {
  event_log<std::pair<std::size_t, std::error_code>> closed;
  test_server server(bulk_server{&closed}, options(), config(budget));
  unique_fd reader = connect_stream(server.address());
  std::vector<unique_fd> hogs;
  for (int i = 0; i < 8; ++i) {
    hogs.push_back(connect_small_rcvbuf(server.address(), 4096));
    ASSERT_TRUE(send_all(hogs.back().get(), "Q2048"));
    EXPECT_TRUE(echo_once(reader.get(), "ping " + std::to_string(i)));
    EXPECT_LE(server.engine().stats().write_queued, budget + chunk);
  }
  // 16 MiB asked for under a 4 MiB budget: at least 5 of the 8 hogs are closed.
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.write_budget_closes >= 5; }))
      << "closes: " << server.engine().stats().total.write_budget_closes;
  EXPECT_LE(server.engine().stats().write_queued, budget + chunk);
  EXPECT_TRUE(echo_once(reader.get(), "still served"));
  for (const auto& [kib, cause] : closed.snapshot()) {
    EXPECT_EQ(kib, 2048u) << "the reader was closed: " << cause.message();
    EXPECT_EQ(cause, nbio::errc::write_queue_overflow) << cause.message();
  }
  EXPECT_TRUE(wait_until(
      [&] { return closed.size() == server.engine().stats().total.write_budget_closes; }));
}

TEST_P(write_budget, zero_budget_lets_queues_grow_past_what_a_budget_would_allow) {
  event_log<std::pair<std::size_t, std::error_code>> closed;
  test_server server(bulk_server{&closed}, options(), config(0));
  std::vector<unique_fd> hogs;
  for (int i = 0; i < 4; ++i) {
    hogs.push_back(connect_small_rcvbuf(server.address(), 4096));
    ASSERT_TRUE(send_all(hogs.back().get(), "Q2048"));
  }
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().write_queued > budget; }))
      << "queued: " << server.engine().stats().write_queued;
  EXPECT_EQ(server.engine().stats().total.write_budget_closes, 0u);
  EXPECT_EQ(closed.size(), 0u);
}

// Two loops write into the same engine-wide total and take blocks from the same depot: each
// sheds its own largest queues, and together they stay within the budget.
TEST(threading_write_budget, two_loops_shed_their_own_largest_queues_and_keep_the_sum_in_budget) {
  event_log<std::pair<std::size_t, std::error_code>> closed;
  nbio::listen_options options;
  options.conn.max_write_queue = 64u << 20;
  test_server server(bulk_server{&closed}, options, {.loops = 2, .max_write_queue_total = budget});
  unique_fd reader = connect_stream(server.address());
  std::vector<unique_fd> hogs;
  for (int i = 0; i < 16; ++i) {
    hogs.push_back(connect_small_rcvbuf(server.address(), 4096));
    ASSERT_TRUE(send_all(hogs.back().get(), "Q1024"));
  }
  // 16 MiB asked for under 4 MiB: at least 12 hogs closed, whichever loop serves them.
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.write_budget_closes >= 12; }))
      << "closes: " << server.engine().stats().total.write_budget_closes;
  EXPECT_TRUE(echo_once(reader.get(), "still served"));
  EXPECT_LE(server.engine().stats().write_queued, budget + 2 * chunk);
  for (const auto& [kib, cause] : closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::write_queue_overflow) << cause.message();
}

INSTANTIATE_TEST_SUITE_P(loop, write_budget, ::testing::Values(edge_mode, level_mode),
                         conn_mode_name);

}  // namespace
