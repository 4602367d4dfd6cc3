// Public. A small copyable reference to a connection, safe to use from any thread.
//
// A handle is a slot pointer plus the slot's generation. Slots live in per-loop slabs that are
// never returned while the engine exists, and a slot's generation changes when its connection
// is freed, so a handle to a closed connection (even one whose slot now holds another
// connection) is detected: every operation on it is a harmless no-op that reports
// errc::not_connected. Using a handle after its engine is destroyed is undefined.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <system_error>

namespace nbio {

class conn;

class conn_handle {
 public:
  conn_handle() = default;

  // Any thread. Copies `data` and has the connection's thread write it. Writes from one thread
  // reach the peer in the order they were made. Returns errc::not_connected when the
  // connection is already gone; a close that races with the write drops it silently.
  std::error_code write(std::string_view data) const;
  // On the connection's loop thread (0 elsewhere, and once it is gone): the bytes waiting to be
  // written to it, its write queue; in blocking mode, what write() handed to its thread and
  // that thread has not written yet. That is bounded by the listener's max_write_queue too:
  // past it write() returns errc::write_queue_overflow and the connection is closed.
  std::size_t queued_bytes() const noexcept;
  // Any thread. conn::close() / conn::close_after_flush() on the connection's thread.
  std::error_code close() const;
  std::error_code close_after_flush() const;
  // Any thread. Runs fn(conn&) on the connection's thread if it is still open then (at once
  // when called on that thread).
  std::error_code dispatch(std::function<void(conn&)> fn) const;
  // Any thread. As dispatch(), but never at once: fn runs after the event being handled now
  // (a handler may call it and return before fn runs). Tasks posted from one thread run in
  // the order posted (and, off the connection's thread, in order with write()s from there).
  std::error_code post(std::function<void(conn&)> fn) const;

  // On the thread of the loop that serves the connection (non-blocking mode), the connection
  // itself while it is open, valid until the current handler or task returns; nullptr on any
  // other thread, in blocking mode, or once it closed. For code that runs on a loop for many
  // connections at once (a pub/sub fan-out): no task, no copy.
  conn* get() const noexcept;
  // Any thread: false once the connection is freed (a snapshot: it may close right after).
  bool alive() const noexcept;
  explicit operator bool() const noexcept { return c_ != nullptr; }
  std::uint32_t generation() const noexcept { return gen_; }
  friend bool operator==(const conn_handle&, const conn_handle&) = default;

 private:
  friend class conn;
  conn_handle(conn* c, std::uint32_t gen) noexcept : c_(c), gen_(gen) {}
  conn* c_ = nullptr;
  std::uint32_t gen_ = 0;
};

}  // namespace nbio
