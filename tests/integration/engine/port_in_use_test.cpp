// Integration: a listen on a port another socket already listens on fails with EADDRINUSE,
// although the engine's per-loop sockets use SO_REUSEPORT; listen_options::join_existing shares
// the port on purpose; port 0 and a port left in TIME_WAIT keep working. The "other process" is
// a raw SO_REUSEPORT listener (what a second nbio server would hold) or a second engine. A Unix
// path a server accepts on is in use too; a stale socket file is not.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <vector>

#include "support/conn_events.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

// A listening socket with SO_REUSEADDR and SO_REUSEPORT on 127.0.0.1, port chosen by the kernel:
// as another nbio process (or any SO_REUSEPORT server) holds its port.
unique_fd reuseport_listener() {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  auto any = *nbio::address::parse("127.0.0.1:0");
  if (::bind(fd.get(), any.data(), any.size()) != 0 || ::listen(fd.get(), 128) != 0) return {};
  return fd;
}

void expect_address_in_use(nbio::engine& eng, const std::string& addr,
                           nbio::listen_options options = {}) {
  try {
    eng.listen(addr, echo_handler{}, options);
    ADD_FAILURE() << "listen on " << addr << " joined the listener already there";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use) << e.code().message();
    EXPECT_NE(std::string(e.what()).find(addr), std::string::npos) << e.what();
  }
}

TEST(port_in_use, reuseport_listener_of_another_socket_makes_listen_fail_with_eaddrinuse) {
  unique_fd other = reuseport_listener();
  ASSERT_TRUE(other);
  const std::string addr = local_address_of(other.get()).to_string();
  nbio::engine eng(two_loops());
  expect_address_in_use(eng, addr);
  nbio::listen_options acceptor;
  acceptor.accept = nbio::accept_strategy::acceptor;
  expect_address_in_use(eng, addr, acceptor);
}

TEST(port_in_use, second_engine_on_the_port_of_a_running_one_fails_with_eaddrinuse) {
  test_server first(echo_handler{});
  const std::string addr = first.address().to_string();
  nbio::engine second(two_loops());
  expect_address_in_use(second, addr);
  // The first server is untouched by the attempt.
  unique_fd fd = connect_stream(first.address());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "ping"));
  EXPECT_EQ(recv_exact(fd.get(), 4).data, "ping");
}

TEST(port_in_use, join_existing_shares_the_port_with_the_listener_already_there) {
  unique_fd other = reuseport_listener();
  ASSERT_TRUE(other);
  const nbio::address addr = local_address_of(other.get());
  for (auto strategy : {nbio::accept_strategy::reuseport, nbio::accept_strategy::acceptor}) {
    nbio::listen_options options;
    options.join_existing = true;
    options.accept = strategy;
    test_server joined(echo_handler{}, options, two_loops(), addr.to_string());
    // The kernel spreads connections over the group by their addresses: out of 64, both the
    // engine and the other socket get some (each misses all with odds under 1e-11).
    std::vector<unique_fd> clients;
    for (int i = 0; i < 64; ++i) {
      clients.push_back(connect_stream(addr));
      ASSERT_TRUE(clients.back());
    }
    EXPECT_TRUE(wait_until([&] { return joined.engine().stats().total.accepted > 0; }))
        << "the engine got no connection: it did not join the port";
    pollfd p{other.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the other listener got no connection";
    unique_fd accepted(::accept4(other.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(accepted);
    // Drain the other listener's backlog before the next round.
    set_nonblocking(other.get());
    while (unique_fd(::accept4(other.get(), nullptr, nullptr, SOCK_CLOEXEC))) {
    }
  }
}

TEST(port_in_use, port_left_in_time_wait_by_a_stopped_server_can_be_listened_on_again) {
  struct close_at_once {
    void on_open(nbio::conn& c) { c.close(); }  // the server closes first: its side waits
  };
  std::string addr;
  {
    test_server first(close_at_once{});
    addr = first.address().to_string();
    unique_fd fd = connect_stream(first.address());
    ASSERT_TRUE(fd);
    EXPECT_TRUE(recv_until_eof(fd.get()).eof);
  }
  nbio::engine again(two_loops());
  EXPECT_NO_THROW(again.listen(addr, echo_handler{})) << "TIME_WAIT taken for a listener";
}

TEST(port_in_use, unix_path_a_server_accepts_on_is_eaddrinuse_and_a_stale_one_is_reused) {
  const std::string path = unique_unix_path("in-use");
  {
    test_server first(echo_handler{}, {.accept = nbio::accept_strategy::acceptor}, two_loops(),
                      path);
    nbio::engine second(two_loops());
    expect_address_in_use(second, path, {.accept = nbio::accept_strategy::acceptor});
    unique_fd fd = connect_stream(first.address());
    ASSERT_TRUE(fd) << "the path was taken from the running server";
    ASSERT_TRUE(send_all(fd.get(), "ping"));
    EXPECT_EQ(recv_exact(fd.get(), 4).data, "ping");
  }
  // The first server is gone; its socket file stays behind and is taken over.
  nbio::engine again(two_loops());
  EXPECT_NO_THROW(again.listen(path, echo_handler{}, {.accept = nbio::accept_strategy::acceptor}));
  again.stop();
  ::unlink(path.c_str() + 5);
}

TEST(port_in_use, port_zero_twice_gives_two_listeners_on_different_ports) {
  nbio::engine eng(two_loops());
  const auto a = eng.listen("127.0.0.1:0", echo_handler{}).local_address();
  const auto b = eng.listen("127.0.0.1:0", echo_handler{}).local_address();
  EXPECT_NE(a.port(), 0);
  EXPECT_NE(a.port(), b.port());
}

}  // namespace
