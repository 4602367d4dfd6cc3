// Echoes one message over loopback through an installed nbio; exits 0 when the echo matches.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nbio/nbio.hpp>

struct echo {
  void on_data(nbio::conn& c, std::string_view bytes) { c.write(bytes); }
};

int main() {
  nbio::engine eng({.loops = 1});
  auto& l = eng.listen("127.0.0.1:0", echo{});
  eng.start();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, l.local_address().data(), l.local_address().size()) != 0) return 1;
  const char msg[] = "installed";
  if (::write(fd, msg, sizeof(msg)) != sizeof(msg)) return 1;
  char buf[sizeof(msg)] = {};
  std::size_t got = 0;
  while (got < sizeof(msg)) {
    ssize_t n = ::read(fd, buf + got, sizeof(msg) - got);
    if (n <= 0) return 1;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  eng.stop();
  std::puts(std::memcmp(buf, msg, sizeof(msg)) == 0 ? "echo ok" : "echo mismatch");
  return std::memcmp(buf, msg, sizeof(msg)) == 0 ? 0 : 1;
}
