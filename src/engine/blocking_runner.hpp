// Private. Blocking mode: a connection served by a thread of its own.
//
// The slot still belongs to a loop (so handles, stats and the slot's lifetime work as for any
// connection), but after start() only the connection's thread touches it, until it hands the
// slot back with loop_impl::release_blocking. The thread waits in poll() on the socket and on
// an eventfd through which other threads hand it work, reads into a buffer of its own, and
// writes directly (waiting in poll() for POLLOUT within the write timeout).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <system_error>

namespace nbio {
class conn;
}

namespace nbio::detail {

class loop_impl;

class blocking_runner {
 public:
  // Loop thread. Starts the connection's thread; false when no thread could be created.
  static bool start(loop_impl& loop, conn& c);
  // Loop thread: stop (engine stop) or drain (graceful shutdown), and hand over work.
  static void request_stop(conn& c);
  static void request_drain(conn& c);
  // Loop thread: handle writes overflowed max_write_queue; the connection closes with
  // errc::write_queue_overflow, out of a write it is blocked in if need be.
  static void request_overflow_close(conn& c);
  static void hand_over(conn& c, std::function<void(conn&)> fn);

  // The connection's own thread (from its handlers).
  static std::error_code write(conn& c, std::string_view data);
  static std::error_code send_file(conn& c, int fd, std::uint64_t offset, std::uint64_t length);
  static void close(conn& c, std::error_code reason);
  static void shutdown_write(conn& c);
  // conn::rebind: deadlines restart under the new handler.
  static void rebound(conn& c);
  static void set_read_deadline(conn& c, std::uint32_t ms);
  static void set_write_deadline(conn& c, std::uint32_t ms);
  // A transport connection finished its handshake; the peer ended its stream.
  static void established(conn& c);
  static void end_of_stream(conn& c);

 private:
  static std::error_code send_file_transport(conn& c, int fd, std::uint64_t offset,
                                             std::uint64_t length);
  static void* thread_main(void* arg);
  static void run(conn& c);
  static void wake(conn& c);
  static bool run_tasks(conn& c);
  static int poll_timeout(conn& c, std::uint32_t now);
  static bool check_deadlines(conn& c, std::uint32_t now);
};

}  // namespace nbio::detail
