// Private. The connection logic every I/O path shares: the epoll loop, the io_uring loop and a
// blocking-mode thread each only learn that bytes arrived, that the peer closed or that a
// deadline passed, and hand that here. What differs between them (who reads the socket, how a
// close is carried out) stays in loop_impl and blocking_runner.
//
// The loop's connection state machine is split by concept, one file each:
//   conn.cpp           the public conn functions (they forward to the loop or the thread)
//   conn_open.cpp      slot allocation, adopting an accepted socket, dialing
//   conn_read.cpp      readiness events, reads, end of stream, pause and resume
//   conn_write.cpp     writes, the write queue, send_file, the engine's write budget
//   conn_close.cpp     close, close after flush, shutdown, reap
//   conn_deadline.cpp  read, write and idle deadlines on the loop's timer wheel
//   conn_handle.cpp    handles: generation-checked references from any thread
//   loop_uring.cpp     the io_uring back-end's side of all of the above
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "nbio/engine/conn.hpp"

namespace nbio::detail {

inline bool due(std::uint32_t deadline, std::uint32_t now) noexcept {
  return static_cast<std::int32_t>(deadline - now) <= 0;
}

inline void* data_of(conn& c) noexcept {
  return reinterpret_cast<char*>(&c) + sizeof(conn);
}

constexpr std::uint16_t clear(std::uint16_t flags, std::uint16_t bits) noexcept {
  return static_cast<std::uint16_t>(flags & ~bits);
}

struct conn_core {
  // Bytes arrived at `now`: the idle and read deadlines move (a handshake keeps its own), then
  // the transport (TLS) or the handler's on_data gets them. The caller counts them. The bytes
  // are the caller's read buffer, which the transport may decrypt in place.
  static void received(conn& c, std::span<char> bytes, std::uint32_t now);
  // The read deadline passed (its flag is cleared here): the error to close with, or none when
  // the handler's on_read_timeout kept the connection open.
  static std::error_code read_deadline_passed(conn& c);
  // The idle timeout passed: a TLS peer is told (close_notify, best effort); the error to close
  // with.
  static std::error_code idle_passed(conn& c);
};

}  // namespace nbio::detail
