// Test support. Plain POSIX sockets for the peer side of integration tests.
#include "support/raw_socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>

namespace nbio_test {
namespace {

using clock = std::chrono::steady_clock;

int remaining_ms(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let the following syscall report the error
  }
}

unique_fd open_stream(const nbio::address& to) {
  return unique_fd(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
}

unique_fd finish_connect(unique_fd fd, const nbio::address& to, const nbio::address& from) {
  if (!fd) return fd;
  if (from.size() > 0 && ::bind(fd.get(), from.data(), from.size()) != 0) return unique_fd();
  int rc;
  do {
    rc = ::connect(fd.get(), to.data(), to.size());
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    fd.reset();
    errno = err;
    return fd;
  }
  return fd;
}

read_result read_loop(int fd, std::size_t limit, std::chrono::milliseconds timeout,
                      bool stop_at_timeout_quietly) {
  read_result r;
  auto deadline = clock::now() + timeout;
  char buf[65536];
  while (r.data.size() < limit) {
    if (!wait_for(fd, POLLIN, deadline)) {
      r.timed_out = !stop_at_timeout_quietly;
      return r;
    }
    std::size_t want = std::min(sizeof(buf), limit - r.data.size());
    ssize_t n = ::recv(fd, buf, want, MSG_DONTWAIT);
    if (n > 0) {
      r.data.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      r.eof = true;
      return r;
    } else if (errno != EAGAIN && errno != EINTR) {
      r.error = errno;
      return r;
    }
  }
  return r;
}

}  // namespace

unique_fd connect_stream(const nbio::address& to, const nbio::address& from) {
  return finish_connect(open_stream(to), to, from);
}

unique_fd connect_small_rcvbuf(const nbio::address& to, int rcvbuf) {
  unique_fd fd = open_stream(to);
  if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  return finish_connect(std::move(fd), to, {});
}

bool send_all(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

read_result recv_exact(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  return read_loop(fd, n, timeout, false);
}

read_result recv_until_eof(int fd, std::chrono::milliseconds timeout, std::size_t limit) {
  return read_loop(fd, limit, timeout, false);
}

read_result recv_for(int fd, std::chrono::milliseconds window) {
  return read_loop(fd, SIZE_MAX, window, true);
}

void set_reset_on_close(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

nbio::address local_address_of(int fd) {
  nbio::address a;
  socklen_t len = nbio::address::capacity();
  if (::getsockname(fd, a.data(), &len) == 0) a.set_size(len);
  return a;
}

std::uint16_t unused_tcp_port() {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto any = *nbio::address::parse("127.0.0.1:0");
  if (::bind(fd.get(), any.data(), any.size()) != 0) return 0;
  return local_address_of(fd.get()).port();
}

unique_fd udp_socket_bound(const nbio::address& bind_to) {
  unique_fd fd(::socket(bind_to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd || ::bind(fd.get(), bind_to.data(), bind_to.size()) != 0) return unique_fd();
  return fd;
}

read_result recv_datagram(int fd, std::chrono::milliseconds timeout) {
  read_result r;
  if (!wait_for(fd, POLLIN, clock::now() + timeout)) {
    r.timed_out = true;
    return r;
  }
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0) {
    r.error = errno;
    return r;
  }
  r.data.assign(buf, static_cast<std::size_t>(n));
  return r;
}

std::string unique_unix_path(std::string_view tag) {
  static std::atomic<int> counter{0};
  char buf[108];
  std::snprintf(buf, sizeof(buf), "/tmp/nbio-test-%.24s-%d-%d.sock", std::string(tag).c_str(),
                static_cast<int>(::getpid()), counter.fetch_add(1));
  ::unlink(buf);
  return std::string("unix:") + buf;
}

}  // namespace nbio_test
