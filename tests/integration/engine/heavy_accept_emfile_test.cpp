// Integration, heavy: a listener whose process runs out of descriptors (EMFILE on accept) must
// pause instead of spinning, and serve again once descriptors are free. The server runs in a
// forked child with RLIMIT_NOFILE lowered to 64; this process floods it with connections and
// reads the child's CPU time from /proc.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "nbio/engine/engine.hpp"
#include "support/child_process.hpp"
#include "support/conn_events.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

constexpr rlim_t child_fd_limit = 64;
constexpr std::size_t flood = 200;  // three times what the child can hold

int server_main(int from_parent, int to_parent) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = child_fd_limit;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 20;
  try {
    nbio::engine eng({.loops = 1});
    auto& l = eng.listen("127.0.0.1:0", echo_handler{});
    eng.start();
    write_line(to_parent, l.local_address().to_string());
    read_line(from_parent, 170s);  // until the parent closes the pipe
    eng.stop();
  } catch (const std::exception& e) {
    write_line(to_parent, std::string("error: ") + e.what());
    return 21;
  }
  return 0;
}

bool echo_works(const nbio::address& addr) {
  unique_fd fd = connect_stream(addr);
  if (!fd || !send_all(fd.get(), "ping", 2s)) return false;
  return recv_exact(fd.get(), 4, 2s).data == "ping";
}

TEST(heavy_accept_emfile, listener_at_the_descriptor_limit_does_not_spin_and_recovers) {
  child_process server(server_main);
  ASSERT_TRUE(server.started());
  auto line = server.read_line(30s);
  ASSERT_TRUE(line);
  auto addr = nbio::address::parse(*line);
  ASSERT_TRUE(addr) << *line;
  ASSERT_TRUE(echo_works(*addr)) << "the server does not serve before the flood";

  // The kernel completes every handshake into the backlog; the child can accept ~55 of them.
  std::vector<unique_fd> clients;
  for (std::size_t i = 0; i < flood; ++i) {
    clients.push_back(connect_stream(*addr));
    ASSERT_TRUE(clients.back()) << "connect " << i << ": " << std::strerror(errno);
  }
  std::this_thread::sleep_for(300ms);  // let the child reach EMFILE

  const double cpu_before = server.cpu_seconds();
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1500ms);
  const double cpu = server.cpu_seconds() - cpu_before;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  ASSERT_GE(cpu_before, 0.0) << "cannot read /proc/" << server.pid() << "/stat";
  // A listener spinning on EMFILE burns a whole core (~100%); pausing costs almost nothing.
  EXPECT_LT(cpu / wall, 0.5) << "server used " << cpu << " s of CPU in " << wall
                             << " s while saturated: accept is busy-looping";

  clients.clear();
  EXPECT_TRUE(wait_until([&] { return echo_works(*addr); }, 60s))
      << "the listener did not resume serving after descriptors were freed";

  server.close_input();
  EXPECT_EQ(server.wait(30s), 0);
}

}  // namespace
