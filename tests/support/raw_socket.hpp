// Test support. Plain POSIX sockets for the peer side of integration tests, so the engine is
// checked against the kernel rather than against itself. Every call is bounded by a timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nbio/core/address.hpp"
#include "support/unique_fd.hpp"

namespace nbio_test {

using namespace std::chrono_literals;

// A blocking stream socket connected to `to` (TCP or Unix, by the address' family), bound to
// `from` first when it is non-empty. Invalid (errno kept) when the connect fails.
unique_fd connect_stream(const nbio::address& to, const nbio::address& from = {});
// As connect_stream, with SO_RCVBUF set to `rcvbuf` bytes before connecting: a slow reader
// whose kernel buffers fill quickly.
unique_fd connect_small_rcvbuf(const nbio::address& to, int rcvbuf);

// Sends all of `data` (MSG_NOSIGNAL). False on an error or when `timeout` passed first.
bool send_all(int fd, std::string_view data, std::chrono::milliseconds timeout = 10s);

// What a read loop ended with.
struct read_result {
  std::string data;
  bool eof = false;        // read returned 0
  int error = 0;           // errno of a failed read (ECONNRESET, ...)
  bool timed_out = false;  // the deadline passed first
};
// Reads until `n` bytes arrived, EOF, an error or the timeout.
read_result recv_exact(int fd, std::size_t n, std::chrono::milliseconds timeout = 10s);
// Reads until EOF, an error, `limit` bytes or the timeout.
read_result recv_until_eof(int fd, std::chrono::milliseconds timeout = 10s,
                           std::size_t limit = SIZE_MAX);
// Reads whatever arrives within `window` (for "nothing must arrive" checks).
read_result recv_for(int fd, std::chrono::milliseconds window);

// SO_LINGER {1, 0}: the next close() sends RST instead of FIN.
void set_reset_on_close(int fd);
void set_nonblocking(int fd);

// The socket's own address (getsockname).
nbio::address local_address_of(int fd);
// A TCP port on 127.0.0.1 that nothing listens on (bound, read and released).
std::uint16_t unused_tcp_port();

// A UDP socket bound to `bind_to` (port 0 picks one), with a receive timeout of 5 s.
unique_fd udp_socket_bound(const nbio::address& bind_to);
// One datagram, or "" with timed_out set.
read_result recv_datagram(int fd, std::chrono::milliseconds timeout = 5s);

// A fresh path for a Unix socket under the temporary directory ("unix:/tmp/...").
std::string unique_unix_path(std::string_view tag);

}  // namespace nbio_test
