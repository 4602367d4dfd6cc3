// Integration: outgoing connections made by a dialer on a second engine.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "support/conn_events.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

struct dial_failure {
  std::error_code ec;
  std::string remote;
};

struct dial_result {
  event_log<dial_failure> failures;
  event_log<std::string> replies;  // what each dialed connection got back in full
  event_log<std::string> local_addresses;
  event_log<int> loops;  // owner loop index per on_open
  std::atomic<int> opened{0};
};

// Sends `message` on open and reports the reply once `message.size()` bytes came back.
struct round_trip {
  dial_result* r;
  std::string message;
  using conn_data = std::string;

  void on_open(nbio::conn& c) {
    r->opened.fetch_add(1);
    r->local_addresses.push(c.local_address().to_string());
    r->loops.push(static_cast<int>(c.owner_loop().index()));
    EXPECT_FALSE(c.write(message));
  }
  void on_data(nbio::conn& c, std::string_view d) {
    auto& got = c.data<std::string>();
    got.append(d);
    if (got.size() >= message.size()) {
      r->replies.push(got);
      c.close();
    }
  }
};

nbio::dialer::error_handler record_failure(dial_result& r) {
  return [&r](std::error_code ec, const std::string& remote) { r.failures.push({ec, remote}); };
}

TEST(dialer, connect_to_a_closed_port_reports_econnrefused) {
  const std::uint16_t port = unused_tcp_port();
  ASSERT_NE(port, 0);
  dial_result r;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, "never sent"});
  client.start();
  const std::string target = "127.0.0.1:" + std::to_string(port);
  d.dial(target, record_failure(r));
  ASSERT_TRUE(r.failures.wait_for_size(1, 10s)) << "on_error never ran";
  auto f = r.failures.snapshot()[0];
  EXPECT_EQ(f.ec, std::errc::connection_refused) << f.ec.message();
  EXPECT_NE(f.remote.find(std::to_string(port)), std::string::npos) << f.remote;
  EXPECT_EQ(r.opened.load(), 0);
  auto stats = client.stats();
  EXPECT_EQ(stats.total.online, 0u);
  EXPECT_EQ(stats.total.dialed, 0u);
}

TEST(dialer, unresolvable_host_name_reports_resolve_failed) {
  dial_result r;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, "never sent"});
  client.start();
  d.dial("no-such-host.invalid:80", record_failure(r));
  ASSERT_TRUE(r.failures.wait_for_size(1, 30s)) << "on_error never ran";
  EXPECT_EQ(r.failures.snapshot()[0].ec, nbio::errc::resolve_failed)
      << r.failures.snapshot()[0].ec.message();
  EXPECT_EQ(r.opened.load(), 0);
}

TEST(dialer, dialed_connection_echoes_1_mib_round_trip) {
  test_server server(echo_handler{});
  dial_result r;
  const std::string payload = random_payload(1u << 20, 99);
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, payload});
  client.start();
  d.dial(server.address().to_string(), record_failure(r));
  ASSERT_TRUE(r.replies.wait_for_size(1, 30s)) << "failures: " << r.failures.size();
  EXPECT_EQ(r.replies.snapshot()[0].size(), payload.size());
  EXPECT_TRUE(r.replies.snapshot()[0] == payload) << "echo differs";
  EXPECT_TRUE(wait_until([&] { return client.stats().total.closed == 1; }));
  auto stats = client.stats();
  EXPECT_EQ(stats.total.dialed, 1u);
  EXPECT_EQ(stats.total.accepted, 0u);
  EXPECT_EQ(stats.total.bytes_out, payload.size());
  EXPECT_EQ(stats.total.bytes_in, payload.size());
  EXPECT_EQ(r.failures.size(), 0u);
}

TEST(dialer, dial_by_host_name_localhost_round_trips) {
  test_server server(echo_handler{});
  dial_result r;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, "via the resolver"});
  client.start();
  d.dial("localhost:" + std::to_string(server.address().port()), record_failure(r));
  ASSERT_TRUE(r.replies.wait_for_size(1, 30s))
      << (r.failures.size() ? r.failures.snapshot()[0].ec.message() : "no reply");
  EXPECT_EQ(r.replies.snapshot()[0], "via the resolver");
}

// Records the peer address each accepted connection sees.
struct remote_recorder {
  event_log<std::string>* remotes;
  void on_open(nbio::conn& c) { remotes->push(c.remote_address().to_string()); }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

TEST(dialer, dial_from_local_source_address_127_0_0_2) {
  event_log<std::string> remotes;
  test_server server(remote_recorder{&remotes});
  dial_result r;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, "from .2"});
  client.start();
  d.dial(server.address().to_string(), record_failure(r), "127.0.0.2:0");
  ASSERT_TRUE(r.replies.wait_for_size(1, 30s))
      << (r.failures.size() ? r.failures.snapshot()[0].ec.message() : "no reply");
  ASSERT_TRUE(remotes.wait_for_size(1, 10s));
  EXPECT_EQ(remotes.snapshot()[0].rfind("127.0.0.2:", 0), 0u) << remotes.snapshot()[0];
  EXPECT_EQ(r.local_addresses.snapshot()[0], remotes.snapshot()[0]);
}

// A loop that wakes late (a long task, a busy machine) finds both the connect's completion and
// its expired timer: I/O is dispatched before timers, so the connection opens. (The other order
// failed connects that had succeeded; a million-connection ramp on 2 cores showed it.)
TEST(dialer, connect_completed_while_the_loop_was_busy_is_not_timed_out) {
  test_server server(echo_handler{});
  dial_result r;
  nbio::engine client({.loops = 1});
  auto& d = client.make_dialer(round_trip{&r, "late"}, {.connect_timeout = 50ms, .conn = {}});
  client.start();
  // The dial task and then a 300 ms stall run back to back on the loop: the loopback connect
  // completes in the kernel at once, while the loop cannot look before its timeout is past.
  std::atomic<bool> stalled{false};
  client.loop_at(0).post([&] {
    d.dial(server.address().to_string(), record_failure(r), {}, 0);
    client.loop_at(0).post([&] {
      std::this_thread::sleep_for(300ms);
      stalled = true;
    });
  });
  ASSERT_TRUE(wait_until([&] { return r.replies.size() + r.failures.size() > 0; }, 30s));
  EXPECT_TRUE(stalled.load());
  EXPECT_EQ(r.failures.size(), 0u)
      << (r.failures.size() ? r.failures.snapshot()[0].ec.message() : "");
  EXPECT_EQ(r.replies.snapshot().size(), 1u);
}

TEST(dialer, loop_index_pins_the_connection_to_that_loop) {
  test_server server(echo_handler{});
  dial_result r;
  nbio::engine client({.loops = 3});
  auto& d = client.make_dialer(round_trip{&r, "pinned"});
  client.start();
  for (int i = 0; i < 4; ++i)
    d.dial(server.address().to_string(), record_failure(r), {}, 2);
  ASSERT_TRUE(r.replies.wait_for_size(4, 30s));
  for (int loop : r.loops.snapshot())
    EXPECT_EQ(loop, 2);
}

TEST(dialer, dial_to_ipv6_and_unix_listeners) {
  const std::string path = unique_unix_path("dialer");
  nbio::engine servers(two_loops());
  auto& v6 = servers.listen("[::1]:0", echo_handler{});
  servers.listen(path, echo_handler{}, {.accept = nbio::accept_strategy::acceptor});
  servers.start();
  dial_result r;
  nbio::engine client(two_loops());
  auto& d = client.make_dialer(round_trip{&r, "families"});
  client.start();
  d.dial(v6.local_address().to_string(), record_failure(r));
  d.dial(path, record_failure(r));
  ASSERT_TRUE(r.replies.wait_for_size(2, 30s))
      << (r.failures.size() ? r.failures.snapshot()[0].ec.message() : "no reply");
  for (const auto& reply : r.replies.snapshot())
    EXPECT_EQ(reply, "families");
  client.stop();
  servers.stop();
  ::unlink(path.c_str() + 5);
}

struct counts_opens {
  std::atomic<int>* opens;
  void on_open(nbio::conn&) { ++*opens; }
};

TEST(dialer, dial_to_a_unix_socket_with_a_full_backlog_reports_an_error) {
  std::string path = "/tmp/nbio-dial-backlog-" + std::to_string(getpid()) + ".sock";
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

}  // namespace

namespace {

// Each dial carries its own greeting into the connection's conn_data (dialer::dial's
// on_connect), which on_open then sends: per-dial context without a lookup table.
struct per_dial_greeter {
  using conn_data = std::string;
  nbio_test::event_log<std::string>* replies;
  void on_open(nbio::conn& c) { EXPECT_FALSE(c.write(c.data<std::string>())); }
  void on_data(nbio::conn& c, std::string_view d) {
    replies->push(std::string(d) + "/" + c.data<std::string>());
    c.close();
  }
};

TEST(dialer, on_connect_fills_each_connections_state_before_on_open) {
  using namespace nbio_test;
  test_server echo(echo_handler{});
  event_log<std::string> replies;
  nbio::engine client({.loops = 2});
  nbio::dialer& d = client.make_dialer(per_dial_greeter{&replies});
  client.start();
  const std::string to = echo.address().to_string();
  for (const char* greeting : {"one", "two", "three"})
    d.dial(
        to, [g = std::string(greeting)](nbio::conn& c) { c.data<std::string>() = g; },
        [](std::error_code ec, const std::string&) { ADD_FAILURE() << ec.message(); });
  ASSERT_TRUE(replies.wait_for_size(3, std::chrono::seconds(10)));
  auto got = replies.snapshot();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"one/one", "three/three", "two/two"}));
}

}  // namespace
