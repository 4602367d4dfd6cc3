// Regressions found in review, each named after the bug it pins down.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "nbio/nbio.hpp"
#include "support/conn_events.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;
using namespace std::chrono_literals;

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

TEST(review_regressions, deadline_set_after_close_does_not_rearm_a_freed_slot) {
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

// Keeps the connection after the peer's FIN and shuts its own side: both directions are done.
struct half_close_then_shutdown {
  conn_events* events;
  void on_open(nbio::conn& c) { events->opened.push(c.handle()); }
  void on_end(nbio::conn& c) { c.shutdown_write(); }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

class review_trigger : public ::testing::TestWithParam<nbio::trigger_mode> {};

TEST_P(review_trigger, both_directions_shut_closes_with_eof_instead_of_spinning) {
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

INSTANTIATE_TEST_SUITE_P(loop, review_trigger,
                         ::testing::Values(nbio::trigger_mode::edge, nbio::trigger_mode::level),
                         [](const auto& info) {
                           return info.param == nbio::trigger_mode::edge ? "edge" : "level";
                         });

struct counts_opens {
  std::atomic<int>* opens;
  void on_open(nbio::conn&) { ++*opens; }
};

TEST(review_regressions, dial_to_a_unix_socket_with_a_full_backlog_reports_an_error) {
  std::string path = "/tmp/nbio-review-" + std::to_string(getpid()) + ".sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof(un.sun_path), "%s", path.c_str());
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0);
  ASSERT_EQ(::listen(listener, 0), 0);  // never accepts: the backlog fills at once

  std::atomic<int> opens{0}, errors{0};
  nbio::engine eng({.loops = 1});
  auto& d = eng.make_dialer(counts_opens{&opens});
  eng.start();
  for (int i = 0; i < 6; ++i)
    d.dial("unix:" + path, [&errors](std::error_code, const std::string&) { ++errors; });
  EXPECT_TRUE(wait_until([&] { return opens + errors == 6 && errors > 0; }, 10s))
      << "opens " << opens << " errors " << errors;
  // The backlog holds at most a connection or two; the rest must fail, not "open".
  EXPECT_GE(errors.load(), 4);
  EXPECT_EQ(eng.stats().total.dialed, static_cast<std::uint64_t>(opens.load()));
  eng.stop();
  ::close(listener);
  ::unlink(path.c_str());
}

// A UDP peer closed in the turn the engine stops still gets its on_close.
struct udp_closer {
  std::atomic<int>* closes;
  nbio::engine** eng;
  void on_data(nbio::udp_peer& p, std::string_view) {
    p.close();
    (*eng)->stop();  // from a handler: only asks
  }
  void on_close(nbio::udp_peer&, std::error_code) { ++*closes; }
};

TEST(review_regressions, udp_peer_closed_as_the_engine_stops_gets_on_close) {
  std::atomic<int> closes{0};
  nbio::engine eng({.loops = 1});
  nbio::engine* self = &eng;
  nbio::address a = eng.udp_listen("127.0.0.1:0", udp_closer{&closes, &self});
  eng.start();
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(::sendto(fd, "x", 1, 0, a.data(), a.size()), 0);
  eng.wait();  // returns after the stop the handler asked for
  ::close(fd);
  EXPECT_EQ(closes.load(), 1);
}

}  // namespace
