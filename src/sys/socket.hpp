// Private. Thin syscall wrappers: the only code that reads errno. Each returns a
// std::error_code (generic category) instead of -1.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "nbio/core/address.hpp"
#include "nbio/engine/config.hpp"

namespace nbio::sys {

std::error_code last_error() noexcept;

// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int open_socket(int family, int type, std::error_code& ec) noexcept;
// A bound, listening stream socket. `reuseport` sets SO_REUSEPORT (TCP only). A Unix path that
// holds a stale socket file is unlinked first; one a server accepts on is EADDRINUSE.
int open_listener(const address& addr, bool reuseport, int backlog, std::error_code& ec) noexcept;
// Whether a TCP listener may take addr without sharing it: a bind with SO_REUSEADDR and
// without SO_REUSEPORT, released at once. Linux fails it with EADDRINUSE while any socket
// listens on the port (SO_REUSEPORT ones included), and lets it pass over TIME_WAIT leftovers.
std::error_code probe_listen(const address& addr) noexcept;
// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; -1 and ec on failure (EAGAIN included).
int accept(int listen_fd, std::error_code& ec) noexcept;
// A UDP socket bound to addr (SO_REUSEPORT when asked).
int open_udp(const address& addr, bool reuseport, std::error_code& ec) noexcept;

// Binds a dialing socket to a source address; port 0 defers the port choice to connect()
// (IP_BIND_ADDRESS_NO_PORT), so many source addresses share the ephemeral range.
std::error_code bind_source(int fd, const address& local) noexcept;
// Non-blocking connect: `connected` is true when it finished at once; EINPROGRESS is success.
std::error_code connect(int fd, const address& remote, bool& connected) noexcept;

// Non-blocking send/recv; >= 0 bytes, or -1 with ec (EAGAIN included).
ssize_t send(int fd, const void* data, std::size_t len, std::error_code& ec) noexcept;
ssize_t sendv(int fd, const struct iovec* iov, int count, std::error_code& ec) noexcept;
// fcntl(F_DUPFD_CLOEXEC): a duplicate of `fd`, or -1 with ec set.
int dup_cloexec(int fd, std::error_code& ec) noexcept;
// sendfile(2) from `in_fd` at *offset (advanced) to the socket; EINTR retried. sendfile has no
// MSG_NOSIGNAL: SIGPIPE is blocked for this thread around the call and a SIGPIPE it raised is
// consumed, so a reset peer is an EPIPE error, never a signal.
ssize_t sendfile(int out_fd, int in_fd, std::uint64_t& offset, std::size_t count,
                 std::error_code& ec) noexcept;
ssize_t recv(int fd, void* buf, std::size_t len, std::error_code& ec) noexcept;

std::error_code socket_error(int fd) noexcept;  // SO_ERROR
void apply_conn_options(int fd, int family, const conn_options& opts) noexcept;
address peer_address(int fd) noexcept;
address local_address(int fd) noexcept;
void close(int fd) noexcept;

inline bool would_block(const std::error_code& ec) noexcept {
  return ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block;
}

}  // namespace nbio::sys
