// Public. A TCP or Unix stream connection, accepted by a listener or made by a dialer.
//
// Thread affinity: every member function is for the connection's own thread only: its loop's
// thread (non-blocking mode) or its dedicated thread (blocking mode), which is where all of its
// handlers run. Other threads use conn_handle (handle()), never a conn& or conn*.
//
// Lifetime: a conn& is valid from on_open to the end of on_close. close() stops I/O at once;
// the slot is freed at the end of the loop turn, after on_close, and may then be reused by a
// new connection, so keep a conn_handle, not a pointer, for anything that outlives a handler.
//
// Memory: a connection is 64 bytes in a per-loop slab (its conn_data follows it in the same
// slot). An idle connection owns nothing else: reads go to the loop's buffer, and a write
// queue exists only while the kernel refuses bytes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "nbio/core/address.hpp"
#include "nbio/core/error.hpp"
#include "nbio/engine/conn_handle.hpp"
#include "nbio/engine/handler_table.hpp"
#include "nbio/engine/timer_wheel.hpp"

namespace nbio {

class loop;
class upgrade_target;

namespace detail {
class loop_impl;
class blocking_runner;
class conn_pool;
struct write_queue;
struct blocking_state;
struct dial_state;
struct transport_conn;
struct conn_core;
// The error category of the transport (TLS) layer, registered by it: close causes keep 16 bits
// of code and a category byte, and this is the third category they can name.
const std::error_category* transport_category() noexcept;
}  // namespace detail

class conn {
 public:
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;

  // Sends `data`. Tries the socket at once; what the kernel does not take is copied to the
  // write queue and flushed by the loop (in blocking mode: written before returning, within
  // the write timeout). Errors: errc::not_connected after close; errc::write_queue_overflow
  // past max_write_queue (and, with overflow_policy::close, the connection is closed), or when
  // this write took the engine's queues past engine_options::max_write_queue_total and this
  // connection's queue was its loop's largest (closed; another connection may be closed
  // instead, with the same cause in its on_close); the socket's errno (EPIPE, ECONNRESET) or
  // ENOMEM when the write queue cannot grow: the connection is closed with it, and on_close
  // reports it. Never throws.
  std::error_code write(std::string_view data);
  // Sends `length` bytes of the open file `fd` from `offset` after what is queued, with
  // sendfile(2): no copy through user space and no memory per byte while it waits (the
  // connection keeps a dup of `fd` until the segment is sent; the caller keeps its own). A file
  // shorter than offset + length closes the connection with EIO (the peer was promised those
  // bytes). Errors as write(), plus the errno of sendfile or dup. In blocking mode: sent before
  // returning, within the write timeout.
  std::error_code send_file(int fd, std::uint64_t offset, std::uint64_t length);
  // Stops reading and writing now and reports errc::local_close (or `reason`) to on_close.
  // Queued data is discarded. Idempotent: the first cause wins.
  void close() { close(errc::local_close); }
  void close(std::error_code reason);
  // Closes once the write queue is empty (at once when it is). Reads stop now.
  void close_after_flush();
  // Half-close: sends FIN once the write queue is empty; reading continues.
  void shutdown_write();
  // Backpressure: stop and resume reading (a proxy pauses a client while its upstream is slow).
  void pause_read();
  void resume_read();
  // Deadlines relative to now; 0 clears. They override the listener's read and write timeouts
  // until the next read (read deadline) or until the queue drains (write deadline).
  void set_read_deadline(std::chrono::milliseconds from_now);
  void set_write_deadline(std::chrono::milliseconds from_now);

  // Moves the connection onto `to`'s handler (a protocol upgrade; engine::make_upgrade_target). The
  // current handler's conn_data is destroyed now and its on_close is never called (it gave the
  // connection away); `to`'s conn_data is built in its place, the read and idle deadlines start
  // again under `to`'s options, then `to`'s on_open runs, then its on_data with `already_read`
  // (bytes the old handler read past the end of its protocol) when that is not empty. Queued
  // writes stay queued, in order (and count against `to`'s max_write_queue from now on: give
  // it room for what may still be queued). The connection stops counting in its listener's online
  // count, so a listener's max_connections caps connections not yet upgraded.
  // Call it last in a handler of the old class (or in a task posted to the connection): the
  // old handler must not touch its conn_data after. Errors: errc::not_connected once closing;
  // errc::slot_too_small when `to` needs more than data_capacity() (its conn_data, or its
  // conn_options::reserve_data; reserve room with conn_options::reserve_data on the listener
  // or dialer).
  std::error_code rebind(const upgrade_target& to, std::string_view already_read = {}) {
    return rebind_with(to, already_read, nullptr, nullptr);
  }
  // As above, and init(conn&) runs once `to`'s conn_data is built, before `to`'s on_open: to
  // fill it in from what the old protocol learnt (a WebSocket's subprotocol, a tunnel's
  // upstream). Nothing is allocated for it.
  template <class Init>
  std::error_code rebind(const upgrade_target& to, std::string_view already_read, Init&& init) {
    auto call = [](conn& c, void* f) { (*static_cast<std::remove_reference_t<Init>*>(f))(c); };
    return rebind_with(to, already_read, call, const_cast<void*>(static_cast<const void*>(&init)));
  }
  // Bytes the slot has for a handler's conn_data: the larger of the listener's or dialer's
  // conn_data and its conn_options::reserve_data.
  std::size_t data_capacity() const noexcept;

  bool is_open() const noexcept { return (flags_ & f_closing) == 0; }
  bool read_paused() const noexcept { return (flags_ & f_read_paused) != 0; }
  bool is_blocking() const noexcept { return (flags_ & f_blocking) != 0; }
  // Whether the connection runs through a transport (TLS: nbio::tls has its details).
  bool has_transport() const noexcept { return (timer_.owner_u16 & t_transport) != 0; }
  std::size_t queued_bytes() const noexcept;
  int native_handle() const noexcept { return fd_; }
  address remote_address() const;  // getpeername; empty when unavailable
  address local_address() const;   // getsockname
  conn_handle handle() const noexcept { return conn_handle(const_cast<conn*>(this), gen_.load()); }
  // The loop that owns the slot (and, in non-blocking mode, runs the handlers).
  nbio::loop& owner_loop() const noexcept;

  // The handler's conn_data, constructed before on_open and destroyed after on_close.
  template <class T>
  T& data() noexcept {
    if constexpr (debug_checks) check_data_type(&detail::type_tag<T>::id);
    return *std::launder(reinterpret_cast<T*>(slot()));
  }
  // The slot's bytes, unchecked: where conn_data starts (data_capacity() of them). For a layer
  // that keeps its own state there and its handler's after it (nbio/websocket/handler.hpp).
  void* slot() noexcept { return reinterpret_cast<char*>(this) + sizeof(conn); }

 private:
  friend class detail::loop_impl;
  friend class detail::blocking_runner;
  friend class detail::conn_pool;
  friend class conn_handle;
  friend struct detail::transport_conn;
  friend struct detail::conn_core;

#ifdef NDEBUG
  static constexpr bool debug_checks = false;
#else
  static constexpr bool debug_checks = true;
#endif
  void check_data_type(const void* tag) const noexcept;
  std::error_code rebind_with(const upgrade_target& to, std::string_view already_read,
                              void (*init)(conn&, void*), void* init_arg);

  enum : std::uint16_t {
    f_closing = 1 << 0,  // close requested; on_close pending or done
    f_close_after_flush = 1 << 1,
    f_shutdown_pending = 1 << 2,  // shutdown(SHUT_WR) once the queue drains
    f_write_shut = 1 << 3,
    f_read_paused = 1 << 4,
    f_read_ready = 1 << 5,  // edge-triggered: more may be readable (reads_per_turn reached)
    f_in_ready_list = 1 << 6,
    f_blocking = 1 << 7,
    f_connecting = 1 << 8,  // dialer: connect() in progress
    f_opened = 1 << 9,      // on_open was delivered
    f_read_deadline = 1 << 10,
    f_write_deadline = 1 << 11,
    f_epollout = 1 << 12,          // level-triggered: EPOLLOUT registered
    f_eof = 1 << 13,               // the peer half-closed
    f_listener_counted = 1 << 14,  // counted in its listener's online count
    f_peer_hup = 1 << 15,          // epoll saw RDHUP/HUP: read to the end, a FIN brings no new edge
  };

  conn() = default;

  // A connection run through a transport (TLS) keeps this bit in the timer's spare 16 bits and
  // the transport's two pointers in the last 16 bytes of its slot (after the conn_data room).
  static constexpr std::uint16_t t_transport = 1;
  // io_uring: a multishot receive is armed; a poll for writability is armed.
  static constexpr std::uint16_t t_recv_armed = 2;
  static constexpr std::uint16_t t_pollout = 4;

  // The first close cause, kept in 3 bytes: the code here, its category in the timer's spare
  // byte (1: nbio::errc, 2: errno).
  void set_cause(std::error_code ec) noexcept {
    const std::error_category* tc = detail::transport_category();
    timer_.owner_u8 = ec.category() == engine_category() ? 1 : (tc && ec.category() == *tc) ? 3 : 2;
    close_code_ = static_cast<std::uint16_t>(ec.value());
  }
  std::error_code cause() const noexcept {
    if (timer_.owner_u8 == 1) return {close_code_, engine_category()};
    if (timer_.owner_u8 == 2) return {close_code_, std::generic_category()};
    if (timer_.owner_u8 == 3) return {close_code_, *detail::transport_category()};
    return errc::local_close;
  }

  // Memory budget: 64 bytes, the size of a cache line; RSS per idle connection measured by
  // bench/tcp_idle. Every field is sized for it: 32-bit millisecond ticks, one pointer to
  // the per-listener class, one pointer that is null while idle.
  timer_link timer_;  // 24: deadlines; tag/owner bytes hold the close cause
  const detail::handler_table* cls_ = nullptr;  // 8: handlers and options, shared per listener
  union {
    detail::write_queue* wq_ = nullptr;  // 8: non-blocking mode, only while data is pending
    detail::blocking_state* bs_;         //    blocking mode: the thread's state
    detail::dial_state* ds_;             //    dialer: while connect() is in flight
  };
  int fd_ = -1;                        // 4
  std::atomic<std::uint32_t> gen_{0};  // 4: bumped when the slot is freed; checked by handles
  std::uint32_t last_active_ = 0;      // 4: tick of the last read or write (idle timeout)
  std::uint32_t read_deadline_ = 0;    // 4
  std::uint32_t write_deadline_ = 0;   // 4
  std::uint16_t flags_ = 0;            // 2
  std::uint16_t close_code_ = 0;       // 2: errno or nbio::errc; category in timer_.owner_u8
};

static_assert(sizeof(conn) == 64, "conn is budgeted at 64 bytes: see the comment on its fields");

}  // namespace nbio
