// push: a server that pushes to its clients from a thread of its own, through conn_handle.
//
// Handlers collect a handle per connection (a pointer and a generation, safe to copy to any
// thread); a publisher thread writes to every handle. A handle whose connection closed in the
// meantime reports errc::not_connected instead of touching freed memory. The example starts
// three clients in-process, pushes three messages, closes one client early to show the stale
// handle, and exits.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nbio/nbio.hpp>

using namespace std::chrono_literals;

struct subscribers {
  std::mutex mu;
  std::vector<nbio::conn_handle> handles;
};

struct push_handler {
  subscribers* subs;
  void on_open(nbio::conn& c) {
    std::lock_guard lock(subs->mu);
    subs->handles.push_back(c.handle());
  }
  void on_close(nbio::conn&, std::error_code cause) {
    std::printf("server: a subscriber left (%s)\n", cause.message().c_str());
  }
};

int main() {
  subscribers subs;
  nbio::engine eng({.loops = 2});
  auto& l = eng.listen("127.0.0.1:0", push_handler{&subs});
  eng.start();

  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, l.local_address().data(), l.local_address().size()) != 0) return 1;
    clients.push_back(fd);
  }
  for (int i = 0; i < 100; ++i) {  // until the server has seen all three
    std::this_thread::sleep_for(10ms);
    std::lock_guard lock(subs.mu);
    if (subs.handles.size() == 3) break;
  }

  std::thread publisher([&subs] {
    for (int n = 1; n <= 3; ++n) {
      std::string message = "news #" + std::to_string(n) + "\n";
      std::lock_guard lock(subs.mu);
      int delivered = 0, gone = 0;
      for (const auto& h : subs.handles) {
        if (h.write(message) == nbio::errc::not_connected)
          ++gone;
        else
          ++delivered;
      }
      std::printf("publisher: news #%d to %d subscribers, %d handles stale\n", n, delivered, gone);
      std::fflush(stdout);
      std::this_thread::sleep_for(100ms);
    }
  });

  // Client 0 reads the first message, then leaves: later writes to its handle are stale.
  char buf[256];
  ssize_t n = ::read(clients[0], buf, sizeof(buf));
  std::printf("client 0 got: %.*s", static_cast<int>(n > 0 ? n : 0), buf);
  ::close(clients[0]);
  publisher.join();
  for (int i = 1; i < 3; ++i) {
    n = ::recv(clients[i], buf, sizeof(buf), MSG_DONTWAIT);
    std::printf("client %d got %zd bytes in all\n", i, n);
    ::close(clients[i]);
  }
  eng.stop();
  return 0;
}
