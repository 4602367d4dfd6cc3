// Integration: listeners: address families, accept strategies, several per engine, the
// max-connections cap, stats() counts and setup errors.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <system_error>
#include <vector>

#include "support/conn_events.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

// One round trip; true when the echo matched.
bool echo_once(int fd, std::string_view text) {
  return send_all(fd, text) && recv_exact(fd, text.size(), 10s).data == text;
}

TEST(listener, max_connections_refuses_extra_connections_cleanly) {
  conn_events events;
  nbio::listen_options opts;
  opts.max_connections = 5;
  test_server server(echo_handler{&events}, opts);
  std::vector<unique_fd> kept;
  for (int i = 0; i < 5; ++i)
    kept.push_back(connect_stream(server.address()));
  ASSERT_TRUE(events.opened.wait_for_size(5, 10s));
  ASSERT_TRUE(wait_until([&] { return server.listener().online() == 5; }));

  for (int i = 0; i < 2; ++i) {
    unique_fd extra = connect_stream(server.address());
    ASSERT_TRUE(extra) << "the kernel completes the handshake; the engine closes at once";
    read_result r = recv_until_eof(extra.get(), 10s);
    EXPECT_TRUE(r.eof || r.error) << "refused connection was not closed";
    EXPECT_EQ(r.data, "");
  }
  EXPECT_TRUE(wait_until([&] { return server.engine().stats().total.refused == 2; }))
      << "refused: " << server.engine().stats().total.refused;
  EXPECT_EQ(server.listener().online(), 5u);
  EXPECT_EQ(events.opened.size(), 5u) << "on_open ran for a refused connection";
  for (auto& fd : kept)
    EXPECT_TRUE(echo_once(fd.get(), "still served"));

  // A freed place is usable again.
  kept.pop_back();
  ASSERT_TRUE(wait_until([&] { return server.listener().online() == 4; }));
  unique_fd again = connect_stream(server.address());
  EXPECT_TRUE(echo_once(again.get(), "room again"));
}

TEST(listener, ipv6_loopback_listener_serves_echo) {
  conn_events events;
  std::mutex m;
  test_server server(echo_handler{&events}, {}, two_loops(), "[::1]:0");
  const nbio::address& local = server.address();
  EXPECT_EQ(local.family(), AF_INET6);
  EXPECT_NE(local.port(), 0);
  EXPECT_EQ(local.to_string(), "[::1]:" + std::to_string(local.port()));
  unique_fd fd = connect_stream(local);
  ASSERT_TRUE(fd);
  EXPECT_TRUE(echo_once(fd.get(), "over IPv6"));
  nbio::address remote_seen;
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  events.opened.snapshot()[0].dispatch([&](nbio::conn& c) {
    std::lock_guard lock(m);
    remote_seen = c.remote_address();
  });
  EXPECT_TRUE(wait_until([&] {
    std::lock_guard lock(m);
    return remote_seen.size() > 0;
  }));
  std::lock_guard lock(m);
  EXPECT_EQ(remote_seen, local_address_of(fd.get()));
}

TEST(listener, unix_socket_listener_with_acceptor_serves_echo) {
  const std::string path = unique_unix_path("listener");
  conn_events events;
  {
    test_server server(echo_handler{&events}, {.accept = nbio::accept_strategy::acceptor},
                       two_loops(), path);
    EXPECT_TRUE(server.address().is_unix());
    EXPECT_EQ(server.address().to_string(), path);
    std::vector<unique_fd> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(connect_stream(server.address()));
      ASSERT_TRUE(clients.back()) << std::strerror(errno);
    }
    for (auto& fd : clients)
      EXPECT_TRUE(echo_once(fd.get(), "over a unix socket"));
    EXPECT_EQ(server.listener().online(), 4u);
  }
  ::unlink(path.c_str() + 5);
}

struct loop_recorder {
  std::array<std::atomic<int>, 8>* per_loop;
  void on_open(nbio::conn& c) { (*per_loop)[c.owner_loop().index()].fetch_add(1); }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
};

TEST(listener, acceptor_strategy_hands_connections_to_every_loop_round_robin) {
  std::array<std::atomic<int>, 8> per_loop{};
  test_server server(loop_recorder{&per_loop}, {.accept = nbio::accept_strategy::acceptor},
                     {.loops = 4});
  std::vector<unique_fd> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(connect_stream(server.address()));
    ASSERT_TRUE(echo_once(clients.back().get(), "rr"));  // one at a time: a strict order
  }
  for (int l = 0; l < 4; ++l)
    EXPECT_EQ(per_loop[l].load(), 10) << "loop " << l;
  auto stats = server.engine().stats();
  ASSERT_EQ(stats.loops.size(), 4u);
  for (const auto& s : stats.loops)
    EXPECT_EQ(s.online, 10u);
}

struct tagger {
  char tag;
  void on_data(nbio::conn& c, std::string_view d) {
    c.write(std::string(1, tag));
    c.write(d);
  }
};

TEST(listener, several_listeners_on_one_engine_keep_their_own_handlers_and_counts) {
  nbio::engine eng(two_loops());
  auto& a = eng.listen("127.0.0.1:0", tagger{'A'});
  auto& b = eng.listen("127.0.0.1:0", tagger{'B'});
  auto& c6 = eng.listen("[::1]:0", tagger{'C'});
  eng.start();
  EXPECT_NE(a.local_address().port(), b.local_address().port());
  std::vector<unique_fd> to_a, to_b, to_c;
  for (int i = 0; i < 3; ++i)
    to_a.push_back(connect_stream(a.local_address()));
  for (int i = 0; i < 2; ++i)
    to_b.push_back(connect_stream(b.local_address()));
  to_c.push_back(connect_stream(c6.local_address()));
  for (auto& fd : to_a) {
    ASSERT_TRUE(send_all(fd.get(), "x"));
    EXPECT_EQ(recv_exact(fd.get(), 2, 10s).data, "Ax");
  }
  for (auto& fd : to_b) {
    ASSERT_TRUE(send_all(fd.get(), "y"));
    EXPECT_EQ(recv_exact(fd.get(), 2, 10s).data, "By");
  }
  ASSERT_TRUE(send_all(to_c[0].get(), "z"));
  EXPECT_EQ(recv_exact(to_c[0].get(), 2, 10s).data, "Cz");
  EXPECT_EQ(a.online(), 3u);
  EXPECT_EQ(b.online(), 2u);
  EXPECT_EQ(c6.online(), 1u);
  to_a.clear();
  EXPECT_TRUE(wait_until([&] { return a.online() == 0; }));
  EXPECT_EQ(b.online(), 2u);
  eng.stop();
}

TEST(listener, listen_after_start_serves_connections) {
  nbio::engine eng(two_loops());
  eng.start();
  auto& l = eng.listen("127.0.0.1:0", echo_handler{});
  unique_fd fd = connect_stream(l.local_address());
  EXPECT_TRUE(echo_once(fd.get(), "late listener"));
  eng.stop();
}

TEST(listener, stats_count_accepted_closed_and_bytes) {
  conn_events events;
  test_server server(echo_handler{&events});
  {
    std::vector<unique_fd> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(connect_stream(server.address()));
      ASSERT_TRUE(echo_once(clients.back().get(), std::string(1000, 'a' + i)));
    }
    ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.online == 3; }));
  }
  ASSERT_TRUE(events.closed.wait_for_size(3, 10s));
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.closed == 3; }));
  auto stats = server.engine().stats();
  EXPECT_EQ(stats.total.accepted, 3u);
  EXPECT_EQ(stats.total.closed, 3u);
  EXPECT_EQ(stats.total.online, 0u);
  EXPECT_EQ(stats.total.dialed, 0u);
  EXPECT_EQ(stats.total.refused, 0u);
  EXPECT_EQ(stats.total.bytes_in, 3000u);
  EXPECT_EQ(stats.total.bytes_out, 3000u);
  nbio::loop_stats sum;
  for (const auto& l : stats.loops)
    sum += l;
  EXPECT_EQ(sum.accepted, stats.total.accepted);
  EXPECT_EQ(sum.bytes_in, stats.total.bytes_in);
  EXPECT_EQ(stats.loops.size(), server.engine().loop_count());
  for (std::size_t i = 0; i < stats.loops.size(); ++i)
    EXPECT_EQ(server.engine().loop_at(i).stats().accepted, stats.loops[i].accepted);
}

TEST(listener, listen_on_a_port_in_use_throws_system_error_naming_the_address) {
  unique_fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto any = *nbio::address::parse("127.0.0.1:0");
  ASSERT_EQ(::bind(taken.get(), any.data(), any.size()), 0);
  ASSERT_EQ(::listen(taken.get(), 16), 0);
  const std::string addr = local_address_of(taken.get()).to_string();

  nbio::engine eng(two_loops());
  try {
    eng.listen(addr, echo_handler{});
    FAIL() << "listen on a port in use did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use) << e.code().message();
    EXPECT_NE(std::string(e.what()).find(addr), std::string::npos) << e.what();
  }
}

TEST(listener, listen_on_an_invalid_address_throws_system_error) {
  nbio::engine eng(two_loops());
  for (const char* bad : {"not-an-address", "127.0.0.1", "[::1]:99999"}) {
    EXPECT_THROW(eng.listen(bad, echo_handler{}), std::system_error) << bad;
  }
}

}  // namespace
