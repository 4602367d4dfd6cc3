// udp_peers: UDP virtual connections (engine::udp_listen) with per-peer state and idle expiry.
//
// The first datagram from an address opens a udp_peer whose peer_data lives as long as it;
// a peer silent for idle_timeout is closed with errc::peer_expired. Two local sockets play the
// peers, then fall silent; the program exits once both have expired.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include <nbio/nbio.hpp>

using namespace std::chrono_literals;

namespace {

struct peers_handler {
  struct peer_data {
    unsigned datagrams = 0;
  };
  std::atomic<int>* expired;
  std::promise<void>* all_expired;

  void on_open(nbio::udp_peer& p) {
    std::printf("open   %s\n", p.remote_address().to_string().c_str());
  }
  void on_data(nbio::udp_peer& p, std::string_view payload) {
    const unsigned n = ++p.data<peer_data>().datagrams;
    p.write("#" + std::to_string(n) + " " + std::string(payload));
  }
  void on_close(nbio::udp_peer& p, std::error_code cause) {
    std::printf("close  %s after %u datagrams: %s\n", p.remote_address().to_string().c_str(),
                p.data<peer_data>().datagrams, cause.message().c_str());
    std::fflush(stdout);
    if (cause == nbio::errc::peer_expired && ++*expired == 2) all_expired->set_value();
  }
};

// A plain blocking UDP socket standing in for a remote peer.
class peer_socket {
 public:
  explicit peer_socket(const nbio::address& server)
      : fd_(socket(server.family(), SOCK_DGRAM, 0)), server_(server) {
    const timeval timeout{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~peer_socket() { close(fd_); }
  peer_socket(const peer_socket&) = delete;
  peer_socket& operator=(const peer_socket&) = delete;

  // Sends `text` and prints the reply; false when none came within 2 s.
  bool exchange(const char* name, const std::string& text) {
    sendto(fd_, text.data(), text.size(), 0, server_.data(), server_.size());
    char reply[256];
    const ssize_t n = recv(fd_, reply, sizeof reply, 0);
    if (n < 0) return false;
    std::printf("%s got \"%.*s\"\n", name, static_cast<int>(n), reply);
    std::fflush(stdout);
    return true;
  }

 private:
  int fd_;
  nbio::address server_;
};

}  // namespace

int main() {
  std::atomic<int> expired{0};
  std::promise<void> all_expired;
  nbio::engine eng({.loops = 1});
  const nbio::address server =
      eng.udp_listen("127.0.0.1:0", peers_handler{&expired, &all_expired}, {.idle_timeout = 300ms});
  eng.start();
  std::printf("udp_listen on %s, peers expire after 300 ms of silence\n",
              server.to_string().c_str());

  peer_socket a(server), b(server);
  bool replied = a.exchange("peer a", "hello") && b.exchange("peer b", "hi") &&
                 a.exchange("peer a", "again") && a.exchange("peer a", "bye");
  std::printf("both peers fall silent\n");
  std::fflush(stdout);

  const bool done = all_expired.get_future().wait_for(5s) == std::future_status::ready;
  eng.stop();
  return replied && done ? 0 : 1;
}
