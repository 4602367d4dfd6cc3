// Integration: random payloads echoed over 1,000 connections held at once, in each I/O mode.
// Labelled threading: blocking and mixed mode run a thread per connection.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "support/conn_events.hpp"
#include "support/echo_client.hpp"
#include "support/io_mode_name.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t connections = 1000;
constexpr std::size_t client_threads = 4;
constexpr std::size_t mixed_threshold = 100;

nbio::listen_options options_for(nbio::io_mode mode) {
  nbio::listen_options o{.mode = mode};
  if (mode == nbio::io_mode::blocking) o.max_blocking_online = 2 * connections;
  if (mode == nbio::io_mode::mixed) o.max_blocking_online = mixed_threshold;
  return o;
}

class threading_echo : public ::testing::TestWithParam<nbio::io_mode> {};

TEST_P(threading_echo, random_payloads_over_1000_concurrent_connections_echo_every_byte) {
  const nbio::io_mode mode = GetParam();
  conn_events events;
  test_server server(echo_handler{&events}, options_for(mode));

  // Mostly small payloads, every tenth up to 256 KiB: ~20 MiB each way in all.
  std::mt19937_64 rng(0x5eed + static_cast<int>(mode));
  std::vector<std::vector<echo_session>> groups(client_threads);
  for (std::size_t i = 0; i < connections; ++i) {
    echo_session s;
    s.fd = connect_stream(server.address());
    ASSERT_TRUE(s.fd) << "connect " << i << ": " << std::strerror(errno);
    std::size_t size = i % 10 == 0 ? 1 + rng() % (256u << 10) : 1 + rng() % (16u << 10);
    s.payload = random_payload(size, rng());
    groups[i % client_threads].push_back(std::move(s));
  }
  ASSERT_TRUE(wait_until([&] { return server.listener().online() == connections; }, 30s))
      << "online: " << server.listener().online();
  // online() counts at accept; on_open may still be on its way (on its own thread).
  ASSERT_TRUE(events.opened.wait_for_size(connections, 30s)) << events.opened.size();

  switch (mode) {
    case nbio::io_mode::nonblocking:
      EXPECT_EQ(events.blocking_opened.load(), 0);
      break;
    case nbio::io_mode::blocking:
      EXPECT_EQ(events.blocking_opened.load(), static_cast<int>(connections));
      EXPECT_EQ(server.listener().blocking_online(), connections);
      break;
    case nbio::io_mode::mixed:
      // Both kinds at once: the first connections on threads, the rest on the loops.
      EXPECT_GT(events.blocking_opened.load(), 0);
      EXPECT_LE(events.blocking_opened.load(), static_cast<int>(mixed_threshold));
      EXPECT_LE(server.listener().blocking_online(), mixed_threshold);
      break;
  }

  std::vector<std::thread> threads;
  std::vector<char> completed(client_threads, 0);
  for (std::size_t t = 0; t < client_threads; ++t)
    threads.emplace_back([&, t] { completed[t] = run_echo_sessions(groups[t], 120s); });
  for (auto& th : threads)
    th.join();

  std::size_t bad = 0;
  for (std::size_t t = 0; t < client_threads; ++t) {
    EXPECT_TRUE(completed[t]) << "client thread " << t << " did not finish";
    for (std::size_t i = 0; i < groups[t].size(); ++i) {
      const echo_session& s = groups[t][i];
      if (s.received == s.payload) continue;
      if (++bad > 5) continue;
      std::size_t at = 0;
      while (at < s.received.size() && at < s.payload.size() && s.received[at] == s.payload[at])
        ++at;
      ADD_FAILURE() << "connection " << i * client_threads + t << ": sent " << s.payload.size()
                    << " bytes, got " << s.received.size() << ", first difference at " << at
                    << " (errno " << s.error << ", eof " << s.eof << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << "connections with a wrong echo";

  groups.clear();  // the clients close: every server side sees EOF
  ASSERT_TRUE(events.closed.wait_for_size(connections, 60s)) << events.closed.size();
  for (const auto& cause : events.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::eof);
  EXPECT_TRUE(wait_until([&] { return server.listener().online() == 0; }, 10s));
  EXPECT_EQ(server.listener().blocking_online(), 0u);
}

INSTANTIATE_TEST_SUITE_P(io_modes, threading_echo,
                         ::testing::Values(nbio::io_mode::nonblocking, nbio::io_mode::blocking,
                                           nbio::io_mode::mixed),
                         io_mode_name);

}  // namespace
