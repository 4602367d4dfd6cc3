// Public. Every knob of the engine layer, each with its default and the reason for it.
//
// All limits live here, in plain structs meant for designated initialisers:
//   nbio::engine eng({.loops = 4});
//   eng.listen("0.0.0.0:8080", h, {.conn = {.idle_timeout = 60s}});
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "nbio/engine/transport.hpp"

namespace nbio {

using namespace std::chrono_literals;

// How accepted connections are served. The same handler code runs in each mode.
enum class io_mode : std::uint8_t {
  nonblocking,  // event loops: for many connections
  blocking,     // a thread per connection with blocking reads and direct writes: few, busy ones
  mixed,        // blocking while fewer than max_blocking_online are, event loops past it
};

// epoll registration: edge-triggered (one epoll_ctl per connection, ever) or level-triggered
// (EPOLLOUT toggled while writes are pending).
enum class trigger_mode : std::uint8_t { edge, level };

// The kernel interface of the event loops (docs/backends.md).
enum class io_backend : std::uint8_t {
  epoll,      // readiness: epoll_wait, then recv/send per connection (trigger_mode applies)
  io_uring,   // completions: multishot accept and receive, the turn's sends in one submission
  automatic,  // io_uring where the kernel offers it (Linux 6.1, not disabled), else epoll
};

// What happens when a write would push the queued bytes past conn_options::max_write_queue.
enum class overflow_policy : std::uint8_t {
  close,   // close with errc::write_queue_overflow (the peer is too slow; default)
  reject,  // drop this write, return errc::write_queue_overflow, keep the connection
};

// How a listener spreads connections over the loops.
enum class accept_strategy : std::uint8_t {
  reuseport,  // one SO_REUSEPORT socket per loop; the kernel balances (default, TCP only)
  acceptor,   // one socket on loop 0 that hands connections out round-robin (Unix sockets)
};

// Per-connection settings, fixed per listener or dialer. Timeouts of 0 are off.
struct conn_options {
  bool tcp_nodelay = true;  // echo and request/response traffic want small writes out now
  bool keepalive = false;   // TCP keepalive probes (SO_KEEPALIVE)
  std::chrono::seconds keepalive_idle = 60s;
  std::chrono::seconds keepalive_interval = 10s;
  int keepalive_count = 5;
  int linger_seconds = -1;  // >= 0 sets SO_LINGER; 0 makes close() send RST
  // Closes with errc::read_timeout when no byte arrives for this long.
  std::chrono::milliseconds read_timeout = 0ms;
  // Closes with errc::write_timeout when queued data stays unsent for this long.
  std::chrono::milliseconds write_timeout = 0ms;
  // Closes with errc::idle_timeout when nothing is read or written for this long.
  std::chrono::milliseconds idle_timeout = 0ms;
  // Bytes a connection may have queued (not yet accepted by the kernel). 4 MiB lets a proxy
  // absorb a burst while a million idle connections cost nothing (queues exist only while
  // data is pending).
  std::size_t max_write_queue = 4u << 20;
  overflow_policy on_overflow = overflow_policy::close;
  // Bytes of conn_data room every connection's slot keeps beyond what its own handler needs,
  // so that conn::rebind() can move it onto a handler with larger conn_data (an HTTP listener
  // whose connections become WebSocket ones: http::server reserves this by itself from its
  // handlers' takeover_bytes). On an upgrade target (engine::make_upgrade_target): the room a
  // connection must have to move onto it, when its handler keeps more than its conn_data there (the
  // WebSocket layer keeps its handler's conn_data after its own). Slots are rounded to 16
  // bytes.
  std::uint32_t reserve_data = 0;
};

struct listen_options {
  io_mode mode = io_mode::nonblocking;
  // mixed mode: serve a new connection on its own thread while fewer than this many blocking
  // connections are online. docs/io_modes.md has the measurement behind the default.
  std::size_t max_blocking_online = 8;
  accept_strategy accept = accept_strategy::reuseport;
  int backlog = 4096;
  // false (default): listen() fails with EADDRINUSE when any other socket already listens on
  // the address, as nginx does, although the per-loop sockets use SO_REUSEPORT (which would
  // otherwise let a second server silently share the port). true: join the SO_REUSEPORT
  // listeners already there (same user): a blue/green deployment starts the new server
  // beside the old one. Workers of nbio::run_workers join their siblings' sockets without it
  // (include/nbio/engine/workers.hpp). Port 0 is not checked; Unix sockets cannot be shared:
  // a path a server accepts on is EADDRINUSE, a stale socket file is unlinked.
  bool join_existing = false;
  // Connections past this many online on this listener are accepted and closed at once
  // (counted in stats().refused). 0 means no cap.
  std::size_t max_connections = 0;
  conn_options conn{};
  // TLS (nbio::tls::context::server(...)) for every connection of this listener; null: plain.
  std::shared_ptr<transport> tls{};
};

struct dial_options {
  std::chrono::milliseconds connect_timeout = 10s;
  conn_options conn{};
  // TLS (nbio::tls::context::client(...)) for every connection of this dialer; null: plain.
  // The name sent as SNI and checked against the certificate is the host of dial()'s `remote`
  // unless the context names one.
  std::shared_ptr<transport> tls{};
};

struct engine_options {
  unsigned loops = 0;  // event loop threads; 0 means one per core
  // epoll by default. The environment variable NBIO_BACKEND (epoll, io_uring or auto), when
  // set, overrides this field, so an unchanged binary can be run on the other back-end (the
  // test suite runs twice this way). An explicit io_uring the kernel or process cannot give
  // (kernel.io_uring_disabled, a seccomp filter, a kernel older than 6.1) makes the engine's
  // constructor throw std::system_error saying why; automatic falls back to epoll and says so
  // in one line on stderr. engine::options().backend tells which one runs.
  io_backend backend = io_backend::epoll;
  // io_uring only. Submission queue entries per loop (the completion queue has 4x); a full
  // queue is submitted early, never dropped.
  unsigned uring_entries = 4096;
  // io_uring only. Received bytes land in a per-loop ring of provided buffers, taken by the
  // kernel as data arrives and handed back once the handler returns: idle connections own
  // none, as with read_buffer_size under epoll. A receive that finds the ring empty is armed
  // again (the bytes wait in the socket). The count (rounded up to a power of two) bounds the
  // completions one turn can take without re-arming; the size bounds one receive. The buffers
  // are made resident when the loop starts, a fixed cost per loop (8 MiB by default), so a
  // connection's figure does not depend on how many buffers it happened to touch.
  unsigned uring_buffers = 2048;
  std::size_t uring_buffer_size = 4096;
  // One read buffer per loop, shared by all its connections: idle connections own none.
  std::size_t read_buffer_size = 64u << 10;
  // Reads per connection per loop turn, so one busy socket cannot starve the others.
  unsigned reads_per_turn = 4;
  unsigned events_per_wait = 1024;  // epoll_wait batch
  unsigned accepts_per_turn = 128;  // accept4 calls per listener readiness
  // Handshake steps (TLS: reads that feed a handshake) per loop turn, so a storm of new
  // connections cannot starve established ones: a full RSA-2048 handshake costs the server
  // ~1 ms of CPU, so 32 bound a turn's handshake work to tens of milliseconds. Connections
  // past the budget wait, unread, for the next turn.
  unsigned handshakes_per_turn = 32;
  trigger_mode trigger = trigger_mode::edge;
  // Stack of each blocking-mode connection thread. Handlers run on it: keep deep recursion
  // and large stack arrays out of blocking-mode handlers.
  std::size_t blocking_stack_size = 256u << 10;
  // EMFILE/ENFILE on accept pauses that listener for this long instead of spinning.
  std::chrono::milliseconds accept_retry = 100ms;
  // Bytes all connections of the engine may hold in write queues together (0: no limit).
  // max_write_queue bounds one connection; this bounds their sum: 200 WebSocket clients that
  // send and never read made ws_echo hold 755 MB under a 4 MiB per-connection cap alone.
  // A write that takes the total past it closes, on the writing loop, that loop's connection
  // with the largest queue, with errc::write_queue_overflow (counted in
  // loop_stats::write_budget_closes), when that queue holds at least 1/256 of the budget
  // (1 MiB of the default): a client that reads keeps a queue far smaller, so only the ones
  // that do not read are closed. The shed queue is freed at once. Memory for queues stays
  // within this plus each loop's pool of 1,024 free blocks (4 MiB); blocks freed past that
  // are kept for any loop, up to this many bytes (256 MiB when 0), so after a burst the
  // process keeps them for the next. Blocking-mode connections write directly, no queue.
  std::size_t max_write_queue_total = 256u << 20;
};

}  // namespace nbio
