// Private. Syscall wrappers.
#include "sys/socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "sys/fault.hpp"

namespace nbio::sys {

namespace fault = detail::fault;

std::error_code last_error() noexcept {
  return {errno, std::generic_category()};
}

int open_socket(int family, int type, std::error_code& ec) noexcept {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ec = last_error();
  return fd;
}

static int fail(int fd, std::error_code& ec) noexcept {
  ec = last_error();
  ::close(fd);
  return -1;
}

// Whether a server accepts on the Unix socket at `addr`: a connect that succeeds, or finds the
// backlog full (EAGAIN), says so; ECONNREFUSED says the file was left by a server that exited.
static bool unix_socket_served(const address& addr) noexcept {
  std::error_code ec;
  int fd = open_socket(AF_UNIX, SOCK_STREAM, ec);
  if (fd < 0) return false;
  const bool served = ::connect(fd, addr.data(), addr.size()) == 0 || errno == EAGAIN;
  ::close(fd);
  return served;
}

// A TCP socket bound to `addr`, or -1 with `ec`: SO_REUSEADDR (a TIME_WAIT leftover of an
// earlier server does not block the bind, a listener does), SO_REUSEPORT when asked (the loops'
// sockets of one listener share the port), IPV6_V6ONLY for IPv6.
static int bound_tcp_socket(const address& addr, bool reuseport, std::error_code& ec) noexcept {
  int fd = open_socket(addr.family(), SOCK_STREAM, ec);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
    return fail(fd, ec);
  if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, addr.data(), addr.size()) < 0) return fail(fd, ec);
  return fd;
}

int open_listener(const address& addr, bool reuseport, int backlog, std::error_code& ec) noexcept {
  int fd = -1;
  if (addr.is_unix()) {
    fd = open_socket(addr.family(), SOCK_STREAM, ec);
    if (fd < 0) return -1;
    // A stale socket file is unlinked so that the path can be bound again; a served one is a
    // path in use, as a TCP port is (unlinking it would take the path from a running server).
    auto* un = reinterpret_cast<const sockaddr_un*>(addr.data());
    struct stat st {};
    if (un->sun_path[0] != '\0' && ::stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
      if (unix_socket_served(addr)) {
        ::close(fd);
        ec = std::make_error_code(std::errc::address_in_use);
        return -1;
      }
      ::unlink(un->sun_path);
    }
    if (::bind(fd, addr.data(), addr.size()) < 0) return fail(fd, ec);
  } else {
    fd = bound_tcp_socket(addr, reuseport, ec);
    if (fd < 0) return -1;
  }
  if (::listen(fd, backlog) < 0) return fail(fd, ec);
  return fd;
}

std::error_code probe_listen(const address& addr) noexcept {
  std::error_code ec;
  const int fd = bound_tcp_socket(addr, false, ec);
  if (fd >= 0) ::close(fd);
  return ec;
}

int accept(int listen_fd, std::error_code& ec) noexcept {
  int fd = fault::fail(fault::kind::accept)
               ? -1
               : ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) ec = last_error();
  return fd;
}

int open_udp(const address& addr, bool reuseport, std::error_code& ec) noexcept {
  int fd = open_socket(addr.family(), SOCK_DGRAM, ec);
  if (fd < 0) return -1;
  int one = 1;
  if (reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
    return fail(fd, ec);
  if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, addr.data(), addr.size()) < 0) return fail(fd, ec);
  return fd;
}

std::error_code bind_source(int fd, const address& local) noexcept {
  if (!local.is_unix() && local.port() == 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  }
  if (::bind(fd, local.data(), local.size()) < 0) return last_error();
  return {};
}

std::error_code connect(int fd, const address& remote, bool& connected) noexcept {
  connected = false;
  int r;
  do
    r = ::connect(fd, remote.data(), remote.size());
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    connected = true;
    return {};
  }
  // EAGAIN from a Unix socket means its backlog is full: the connect failed.
  if (errno == EINPROGRESS) return {};
  return last_error();
}

ssize_t send(int fd, const void* data, std::size_t len, std::error_code& ec) noexcept {
  ssize_t n;
  do
    n = fault::fail(fault::kind::write) ? -1 : ::send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) ec = last_error();
  return n;
}

ssize_t sendv(int fd, const struct iovec* iov, int count, std::error_code& ec) noexcept {
  msghdr msg{};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  ssize_t n;
  do
    n = fault::fail(fault::kind::write) ? -1 : ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) ec = last_error();
  return n;
}

int dup_cloexec(int fd, std::error_code& ec) noexcept {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ec = last_error();
  return copy;
}

ssize_t sendfile(int out_fd, int in_fd, std::uint64_t& offset, std::size_t count,
                 std::error_code& ec) noexcept {
  sigset_t pipe_only, old_mask, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  auto off = static_cast<off_t>(offset);
  ssize_t n;
  do
    n = fault::fail(fault::kind::sendfile) ? -1 : ::sendfile(out_fd, in_fd, &off, count);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    ec = last_error();
  else
    offset = static_cast<std::uint64_t>(off);
  // A short count can carry a SIGPIPE too: sendfile moves the file in pieces and returns what
  // the first ones sent when a later one meets the reset (found by the fault sweep: the signal,
  // unblocked below, killed the process). Only errors and short counts pay the extra syscall.
  const bool may_have_raised =
      n < 0 ? ec == std::errc::broken_pipe : static_cast<std::size_t>(n) < count;
  if (may_have_raised && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return n;
}

ssize_t recv(int fd, void* buf, std::size_t len, std::error_code& ec) noexcept {
  ssize_t n;
  do
    n = fault::fail(fault::kind::read) ? -1 : ::recv(fd, buf, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) ec = last_error();
  return n;
}

std::error_code socket_error(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return last_error();
  return err ? std::error_code(err, std::generic_category()) : std::error_code();
}

void apply_conn_options(int fd, int family, const conn_options& opts) noexcept {
  if (family == AF_UNIX) return;
  int one = 1;
  if (opts.tcp_nodelay) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (opts.keepalive) {
    int idle = static_cast<int>(opts.keepalive_idle.count());
    int intvl = static_cast<int>(opts.keepalive_interval.count());
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &opts.keepalive_count, sizeof(int));
  }
  if (opts.linger_seconds >= 0) {
    linger l{1, opts.linger_seconds};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
}

address peer_address(int fd) noexcept {
  address a;
  socklen_t len = address::capacity();
  if (::getpeername(fd, a.data(), &len) == 0) a.set_size(len);
  return a;
}

address local_address(int fd) noexcept {
  address a;
  socklen_t len = address::capacity();
  if (::getsockname(fd, a.data(), &len) == 0) a.set_size(len);
  return a;
}

void close(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace nbio::sys
