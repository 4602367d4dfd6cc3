// Regressions from a review: conn::rebind and dialer::dial's per-dial on_connect, edge cases.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "support/conn_events.hpp"
#include "support/event_log.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace std::chrono_literals;

struct review_counts {
  std::atomic<int> old_opened{0};
  std::atomic<int> new_opened{0};
  std::atomic<int> old_closed{0};
  std::atomic<int> new_closed{0};
  event_log<std::string> new_data;
  std::atomic<nbio::upgrade_target*> to{nullptr};
};

// The dialer's handler: on_open greets, which must never happen once on_connect moved the
// connection elsewhere.
struct dial_side {
  struct conn_data {
    std::uint32_t greeted = 0;
  };
  review_counts* n;
  void on_open(nbio::conn& c) {
    n->old_opened.fetch_add(1);
    c.write("old-open\n");
  }
  void on_close(nbio::conn&, std::error_code) { n->old_closed.fetch_add(1); }
};

struct moved_side {
  struct conn_data {
    std::uint64_t seen = 0;
    char room[48] = {};
  };
  review_counts* n;
  void on_open(nbio::conn& c) {
    n->new_opened.fetch_add(1);
    c.write("new-open\n");
  }
  void on_data(nbio::conn& c, std::string_view d) {
    c.data<conn_data>().seen += d.size();
    n->new_data.push(std::string(d));
  }
  void on_close(nbio::conn&, std::error_code) { n->new_closed.fetch_add(1); }
};

// An on_connect that picks the protocol per dial (rebind): only the new handler's on_open runs
// (the dialer's used to run after it, on the new handler's conn_data).
TEST(review_rebind, rebind_in_on_connect_skips_the_dialers_on_open) {
  test_server echo(echo_handler{});
  review_counts n;
  nbio::engine client({.loops = 1});
  nbio::dial_options o;
  o.conn.reserve_data = sizeof(moved_side::conn_data);
  nbio::dialer& d = client.make_dialer(dial_side{&n}, o);
  n.to = &client.make_upgrade_target(moved_side{&n});
  client.start();
  event_log<std::error_code> rebinds;
  d.dial(
      echo.address().to_string(), [&](nbio::conn& c) { rebinds.push(c.rebind(*n.to.load(), {})); },
      [](std::error_code ec, const std::string&) { ADD_FAILURE() << ec.message(); });
  ASSERT_TRUE(rebinds.wait_for_size(1, 5s));
  EXPECT_FALSE(rebinds.snapshot()[0]);
  ASSERT_TRUE(wait_until([&] { return n.new_opened.load() == 1; }, 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(n.old_opened.load(), 0) << "the dialer's on_open ran on the rebound connection";
  std::string echoed;
  for (auto& s : n.new_data.snapshot())
    echoed += s;
  EXPECT_EQ(echoed, "new-open\n");
  client.stop();
}

// Passes: rebind with a write queue pending (the peer does not read): the queued bytes stay in
// order ahead of what the new handler writes, and the new handler alone sees the close.
struct flooder {
  struct conn_data {
    std::uint32_t x = 0;
  };
  review_counts* n;
  void on_data(nbio::conn& c, std::string_view d) {
    if (d.find("GO") == std::string_view::npos) return;
    std::string big(8u << 20, 'q');
    c.write(big);  // more than the kernel takes while the client is not reading
    const std::size_t queued = c.queued_bytes();
    if (!c.is_blocking()) {
      EXPECT_GT(queued, 0u);
    }
    EXPECT_FALSE(c.rebind(*n->to.load(), {}));
  }
  void on_close(nbio::conn&, std::error_code) { n->old_closed.fetch_add(1); }
};

TEST(review_rebind, rebind_with_a_write_queue_keeps_the_order) {
  review_counts n;
  nbio::conn_options co;
  co.reserve_data = sizeof(moved_side::conn_data);
  co.max_write_queue = 32u << 20;
  test_server srv(flooder{&n}, nbio::listen_options{.conn = co});
  // The new handler's max_write_queue rules after the rebind (with the default 4 MiB the
  // queue inherited here would overflow on its first write).
  n.to = &srv.engine().make_upgrade_target(moved_side{&n}, co);
  auto fd = connect_small_rcvbuf(srv.address(), 4096);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "GO"));
  std::this_thread::sleep_for(100ms);
  const read_result r = recv_exact(fd.get(), (8u << 20) + 9, 10s);
  ASSERT_EQ(r.data.size(), (8u << 20) + 9)
      << "eof " << r.eof << " errno " << r.error << " timed out " << r.timed_out << " old closed "
      << n.old_closed.load() << " new closed " << n.new_closed.load();
  EXPECT_EQ(r.data.find_first_not_of('q'), 8u << 20);
  EXPECT_EQ(r.data.substr(8u << 20), "new-open\n");
  fd.reset();
  ASSERT_TRUE(wait_until([&] { return n.new_closed.load() == 1; }, 5s));
  EXPECT_EQ(n.old_closed.load(), 0);
}

}  // namespace
