// Integration: conn::rebind, a live connection moved onto another handler (a protocol upgrade),
// in the event-loop and blocking modes: the bytes read past the upgrade reach the new handler
// first, the old handler is never told of the close, the new one once, and the new handler's
// options (conn_data, idle timeout, write-queue cap) rule from then on; a rebind from
// dialer::dial's per-dial on_connect, and one with a write queue pending.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/event_log.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace std::chrono_literals;

// After the upgrade: echoes with a prefix and a running count kept in its (larger) conn_data.
struct upgraded {
  struct conn_data {
    std::uint64_t messages = 0;
    char room[40] = {};  // larger than the line handler's conn_data: needs reserve_data
  };
  std::atomic<int>* opened;
  conn_events* events;
  void on_open(nbio::conn& c) {
    opened->fetch_add(1);
    c.write("upgraded\n");
  }
  void on_data(nbio::conn& c, std::string_view d) {
    auto& st = c.data<conn_data>();
    ++st.messages;
    std::string out = "#";
    out += std::to_string(st.messages);
    out += ':';
    out.append(d);
    c.write(out);
  }
  void on_close(nbio::conn&, std::error_code ec) { events->closed.push(ec); }
};

struct shared_state {
  std::atomic<nbio::upgrade_target*> to{nullptr};
  std::atomic<int> old_closed{0};
  std::atomic<int> new_opened{0};
  event_log<std::error_code> rebinds;  // what each rebind() returned
  conn_events events;
};

// Before the upgrade: a line protocol whose "UPGRADE\n" line hands the connection over, with
// whatever followed the line in the same read. "POST\n" does the same from a posted task.
struct line_handler {
  struct conn_data {
    std::uint32_t lines = 0;
  };
  shared_state* s;
  void on_data(nbio::conn& c, std::string_view d) {
    ++c.data<conn_data>().lines;
    if (d.starts_with("UPGRADE\n")) {
      s->rebinds.push(c.rebind(*s->to.load(), d.substr(8)));
      return;  // nothing of this handler's may be touched after the hand-over
    }
    if (d.starts_with("POST\n")) {
      c.handle().post([s = s, rest = std::string(d.substr(5))](nbio::conn& pc) {
        s->rebinds.push(pc.rebind(*s->to.load(), rest));
      });
      return;
    }
    std::string out = "line:";
    out.append(d);
    c.write(out);
  }
  void on_close(nbio::conn&, std::error_code) { s->old_closed.fetch_add(1); }
};

class rebind : public ::testing::TestWithParam<conn_mode> {
 protected:
  nbio::listen_options with_reserve(std::uint32_t reserve) const {
    nbio::conn_options o;
    o.reserve_data = reserve;
    return GetParam().listen(o);
  }
};

TEST_P(rebind, bytes_after_the_upgrade_go_to_the_new_handler_in_order) {
  shared_state s;
  test_server server(line_handler{&s}, with_reserve(64), GetParam().engine());
  s.to = &server.engine().make_upgrade_target(upgraded{&s.new_opened, &s.events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "hi"));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, "line:hi");
  ASSERT_TRUE(send_all(fd.get(), "UPGRADE\nearly"));
  const std::string want = "upgraded\n#1:early";
  EXPECT_EQ(recv_exact(fd.get(), want.size()).data, want);
  ASSERT_TRUE(send_all(fd.get(), "next"));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, "#2:next");
  ASSERT_TRUE(s.rebinds.wait_for_size(1, 5s));
  EXPECT_FALSE(s.rebinds.snapshot()[0]) << s.rebinds.snapshot()[0].message();
  // Moved off the listener: it counts connections not yet upgraded.
  EXPECT_TRUE(wait_until([&] { return server.listener().online() == 0; }));
  fd.reset();
  ASSERT_TRUE(s.events.closed.wait_for_size(1, 5s)) << "the new handler was not told of the close";
  EXPECT_EQ(s.events.closed.snapshot()[0], nbio::errc::eof);
  EXPECT_EQ(s.new_opened.load(), 1);
  EXPECT_EQ(s.old_closed.load(), 0) << "the old handler gave the connection away";
}

TEST_P(rebind, from_a_posted_task) {
  shared_state s;
  test_server server(line_handler{&s}, with_reserve(64), GetParam().engine());
  s.to = &server.engine().make_upgrade_target(upgraded{&s.new_opened, &s.events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "POST\nx"));
  const std::string want = "upgraded\n#1:x";
  EXPECT_EQ(recv_exact(fd.get(), want.size()).data, want);
  ASSERT_TRUE(send_all(fd.get(), "y"));
  EXPECT_EQ(recv_exact(fd.get(), 4).data, "#2:y");
}

TEST_P(rebind, conn_data_larger_than_the_slot_is_refused_and_the_connection_goes_on) {
  shared_state s;
  test_server server(line_handler{&s}, GetParam().listen(), GetParam().engine());
  s.to = &server.engine().make_upgrade_target(upgraded{&s.new_opened, &s.events});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "UPGRADE\n"));
  ASSERT_TRUE(s.rebinds.wait_for_size(1, 5s));
  // The refusal came back before anything changed: the line handler still serves.
  EXPECT_EQ(s.rebinds.snapshot()[0], nbio::errc::slot_too_small);
  ASSERT_TRUE(send_all(fd.get(), "ok"));
  EXPECT_EQ(recv_exact(fd.get(), 7).data, "line:ok");
  EXPECT_EQ(s.new_opened.load(), 0);
}

TEST_P(rebind, the_new_handlers_idle_timeout_applies) {
  shared_state s;
  test_server server(line_handler{&s}, with_reserve(64), GetParam().engine());
  s.to = &server.engine().make_upgrade_target(upgraded{&s.new_opened, &s.events},
                                              nbio::conn_options{.idle_timeout = 300ms});
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(send_all(fd.get(), "UPGRADE\n"));
  EXPECT_EQ(recv_exact(fd.get(), 9).data, "upgraded\n");
  ASSERT_TRUE(s.events.closed.wait_for_size(1, 10s)) << "no idle timeout after the upgrade";
  EXPECT_EQ(s.events.closed.snapshot()[0], nbio::errc::idle_timeout);
  EXPECT_TRUE(recv_until_eof(fd.get()).eof);
}

INSTANTIATE_TEST_SUITE_P(loop, rebind, ::testing::Values(edge_mode, level_mode), conn_mode_name);
INSTANTIATE_TEST_SUITE_P(threading_blocking, rebind, ::testing::Values(blocking_mode),
                         conn_mode_name);

// Edge cases of conn::rebind and dialer::dial's per-dial on_connect: plain tests, one engine.
struct moved_counts {
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
  moved_counts* n;
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
  moved_counts* n;
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
TEST(rebind_moved_side, rebind_in_on_connect_skips_the_dialers_on_open) {
  test_server echo(echo_handler{});
  moved_counts n;
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
  moved_counts* n;
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

TEST(rebind_moved_side, rebind_with_a_write_queue_keeps_the_order) {
  moved_counts n;
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
