// Public. The engine's error model: one enum, one std::error_category.
//
// Every failure on the I/O path is reported as a std::error_code by value. Errors that come
// from a syscall keep their errno in std::generic_category(); the conditions the engine itself
// decides (a timeout, a full write queue, a local close) use nbio::errc below. on_close reports
// the first cause only.
#pragma once

#include <string>
#include <system_error>

namespace nbio {

enum class errc {
  eof = 1,               // the peer closed its side (read returned 0)
  local_close,           // conn::close() or conn::close_after_flush() on this side
  shutdown,              // the engine was stopped or its graceful-shutdown deadline passed
  read_timeout,          // the read deadline passed
  write_timeout,         // the write deadline passed with data still queued
  idle_timeout,          // no read or write for the configured idle time
  write_queue_overflow,  // queued bytes passed the write-queue cap
  not_connected,         // the handle names a connection that is gone (its slot was reused)
  connect_timeout,       // the dialer's connect did not finish in time
  resolve_failed,        // name resolution found no address
  peer_expired,          // a UDP virtual connection saw no datagram for its idle time
  slot_too_small,        // conn::rebind: the new handler's conn_data does not fit the slot
  handshake_timeout,     // a transport's (TLS) handshake did not finish in time
};

const std::error_category& engine_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), engine_category()};
}

// The errno of a failed syscall as an error_code (generic category, so comparisons against
// std::errc work).
inline std::error_code errno_code(int err) noexcept {
  return {err, std::generic_category()};
}

}  // namespace nbio

template <>
struct std::is_error_code_enum<nbio::errc> : std::true_type {};
