// Integration, heavy: 15,000 connections held at once, then closed, with the counts checked.
// Client and server live in different processes: each side needs 15,000 descriptors and the
// hard limit is 20,000 per process.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/fd_limit.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr std::size_t connections = 15000;

struct counters {
  std::atomic<std::size_t> opened{0};
  std::atomic<std::size_t> closed_eof{0};
  std::atomic<std::size_t> closed_other{0};
};

struct counting_echo {
  counters* n;
  void on_open(nbio::conn&) { n->opened.fetch_add(1); }
  void on_data(nbio::conn& c, std::string_view d) { c.write(d); }
  void on_close(nbio::conn&, std::error_code cause) {
    (cause == nbio::errc::eof ? n->closed_eof : n->closed_other).fetch_add(1);
  }
};

// The client process: opens every connection, proves each one live with a one-byte echo while
// all are open, reports, and closes them all when told to.
int client_main(int from_parent, int to_parent) {
  auto target = read_line(from_parent, 60s);
  auto addr = target ? nbio::address::parse(*target) : std::nullopt;
  if (!addr) return 10;
  std::vector<unique_fd> fds;
  fds.reserve(connections);
  for (std::size_t i = 0; i < connections; ++i) {
    fds.push_back(connect_stream(*addr));
    if (!fds.back()) {
      write_line(to_parent, "connect " + std::to_string(i) + " failed: " + std::strerror(errno));
      return 11;
    }
  }
  for (auto& fd : fds)
    if (!send_all(fd.get(), "x", 10s)) return 12;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto r = recv_exact(fds[i].get(), 1, 10s);
    if (r.data != "x") {
      write_line(to_parent, "echo " + std::to_string(i) + " failed");
      return 13;
    }
  }
  write_line(to_parent, "open");
  if (read_line(from_parent, 120s) != "close") return 14;
  fds.clear();
  write_line(to_parent, "closed");
  return 0;
}

TEST(heavy_scale, holds_15000_connections_at_once_then_closes_all) {
  const rlim_t limit = raise_fd_limit();
  if (limit < connections + 1000)
    GTEST_SKIP() << "RLIMIT_NOFILE is " << limit << ", need " << connections + 1000;

  child_process client(client_main);  // forked before the engine starts any thread
  ASSERT_TRUE(client.started());

  counters n;
  test_server server(counting_echo{&n});
  ASSERT_TRUE(client.send_line(server.address().to_string()));
  auto reply = client.read_line(180s);
  ASSERT_EQ(reply.value_or("(no reply)"), "open");

  EXPECT_EQ(server.listener().online(), connections);
  EXPECT_EQ(n.opened.load(), connections);
  ASSERT_TRUE(wait_until([&] { return server.engine().stats().total.bytes_out == connections; }))
      << "bytes_out " << server.engine().stats().total.bytes_out;
  auto stats = server.engine().stats();
  EXPECT_EQ(stats.total.online, connections);
  EXPECT_EQ(stats.total.accepted, connections);
  EXPECT_EQ(stats.total.closed, 0u);
  EXPECT_EQ(stats.total.refused, 0u);
  EXPECT_EQ(stats.total.bytes_in, connections);
  std::uint64_t per_loop_online = 0;
  for (const auto& l : stats.loops)
    per_loop_online += l.online;
  EXPECT_EQ(per_loop_online, connections);

  ASSERT_TRUE(client.send_line("close"));
  EXPECT_EQ(client.read_line(60s).value_or("(no reply)"), "closed");
  EXPECT_TRUE(wait_until([&] { return server.listener().online() == 0; }, 60s))
      << "still online: " << server.listener().online();
  EXPECT_TRUE(wait_until([&] { return n.closed_eof + n.closed_other == connections; }, 10s));
  EXPECT_EQ(n.closed_eof.load(), connections);
  stats = server.engine().stats();
  EXPECT_EQ(stats.total.online, 0u);
  EXPECT_EQ(stats.total.closed, connections);
  EXPECT_EQ(client.wait(30s), 0);
}

}  // namespace
