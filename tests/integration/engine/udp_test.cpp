// Integration: UDP: plain datagrams (udp_bind) and per-peer virtual connections (udp_listen).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "nbio/engine/engine.hpp"
#include "support/event_log.hpp"
#include "support/payload.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

struct datagram_echo {
  void on_datagram(nbio::udp_socket& s, std::string_view payload, const nbio::address& from) {
    EXPECT_TRUE(s.owner_loop().in_loop_thread());
    s.send_to(from, payload);
  }
};

bool send_datagram(int fd, const nbio::address& to, std::string_view payload) {
  return ::sendto(fd, payload.data(), payload.size(), 0, to.data(), to.size()) ==
         static_cast<ssize_t>(payload.size());
}

TEST(udp, bind_echoes_every_datagram) {
  nbio::engine eng({.loops = 2});
  auto& sock = eng.udp_bind("127.0.0.1:0", datagram_echo{}, 1);
  eng.start();
  const nbio::address server = sock.local_address();
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(sock.owner_loop().index(), 1u);

  unique_fd client = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  ASSERT_TRUE(client);
  for (std::size_t i = 0; i < 200; ++i) {
    const std::string payload = random_payload(1 + (i * 997) % 8000, i);
    ASSERT_TRUE(send_datagram(client.get(), server, payload));
    read_result r = recv_datagram(client.get(), 5s);
    ASSERT_FALSE(r.timed_out) << "datagram " << i << " was not echoed";
    ASSERT_TRUE(r.data == payload) << "datagram " << i << " differs";
  }
  eng.stop();
}

struct peer_events {
  event_log<std::string> opened;  // remote address per on_open
  event_log<std::error_code> closed;
};

// Replies "<count>" where count is the datagrams this peer sent so far (per-peer state); the
// payload "close" closes the peer.
struct counting_peers {
  peer_events* ev;
  using peer_data = int;

  void on_open(nbio::udp_peer& p) {
    EXPECT_EQ(p.data<int>(), 0);
    ev->opened.push(p.remote_address().to_string());
  }
  void on_data(nbio::udp_peer& p, std::string_view payload) {
    int n = ++p.data<int>();
    if (payload == "close") {
      p.close();
      return;
    }
    p.write(std::to_string(n));
  }
  void on_close(nbio::udp_peer&, std::error_code cause) { ev->closed.push(cause); }
};

std::string ask(int fd, const nbio::address& to, std::string_view payload) {
  if (!send_datagram(fd, to, payload)) return "(send failed)";
  read_result r = recv_datagram(fd, 5s);
  return r.timed_out ? "(timeout)" : r.data;
}

TEST(udp, listen_opens_one_virtual_connection_per_peer_and_expires_idle_ones) {
  peer_events ev;
  nbio::engine eng({.loops = 2});
  const nbio::address server =
      eng.udp_listen("127.0.0.1:0", counting_peers{&ev}, {.idle_timeout = 300ms});
  eng.start();
  ASSERT_NE(server.port(), 0);

  unique_fd a = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  unique_fd b = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  EXPECT_EQ(ask(a.get(), server, "hi"), "1");
  EXPECT_EQ(ask(a.get(), server, "hi"), "2");
  EXPECT_EQ(ask(b.get(), server, "hi"), "1");
  EXPECT_EQ(ask(a.get(), server, "hi"), "3");
  ASSERT_EQ(ev.opened.size(), 2u) << "one on_open per new peer";
  EXPECT_EQ(ev.opened.snapshot()[0], local_address_of(a.get()).to_string());
  EXPECT_EQ(ev.opened.snapshot()[1], local_address_of(b.get()).to_string());

  ASSERT_TRUE(ev.closed.wait_for_size(2, 20s)) << "idle peers did not expire";
  for (auto cause : ev.closed.snapshot())
    EXPECT_EQ(cause, nbio::errc::peer_expired);

  // The expired peer is forgotten: its next datagram opens a fresh one with fresh state.
  EXPECT_EQ(ask(a.get(), server, "back"), "1");
  EXPECT_EQ(ev.opened.size(), 3u);
  eng.stop();
}

TEST(udp, peer_close_forgets_the_peer_and_the_next_datagram_opens_a_new_one) {
  peer_events ev;
  nbio::engine eng({.loops = 1});
  const nbio::address server = eng.udp_listen("127.0.0.1:0", counting_peers{&ev});
  eng.start();
  unique_fd a = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  EXPECT_EQ(ask(a.get(), server, "hi"), "1");
  ASSERT_TRUE(send_datagram(a.get(), server, "close"));
  ASSERT_TRUE(ev.closed.wait_for_size(1, 10s));
  EXPECT_EQ(ev.closed.snapshot()[0], nbio::errc::local_close);
  EXPECT_EQ(ask(a.get(), server, "again"), "1");
  EXPECT_EQ(ev.opened.size(), 2u);
  eng.stop();
}

struct drop_reporter {
  void on_data(nbio::udp_peer& p, std::string_view) {
    p.write(std::to_string(p.socket().dropped()));
  }
};

TEST(udp, max_peers_drops_datagrams_from_further_peers) {
  nbio::engine eng({.loops = 1});
  const nbio::address server = eng.udp_listen("127.0.0.1:0", drop_reporter{}, {.max_peers = 1});
  eng.start();
  unique_fd a = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  unique_fd b = udp_socket_bound(*nbio::address::parse("127.0.0.1:0"));
  EXPECT_EQ(ask(a.get(), server, "first"), "0");
  ASSERT_TRUE(send_datagram(b.get(), server, "over the cap"));
  EXPECT_TRUE(recv_datagram(b.get(), 300ms).timed_out) << "a peer past max_peers was served";
  EXPECT_EQ(ask(a.get(), server, "count"), "1");
  eng.stop();
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

TEST(udp, udp_peer_closed_as_the_engine_stops_gets_on_close) {
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
