// Public. The engine: N event loops and what runs on them.
//
//   nbio::engine eng;                                   // one loop per core
//   eng.listen("127.0.0.1:8080", echo_handler{});       // before or after start()
//   eng.start();                                        // loop threads run (run(): and wait)
//   ...
//   eng.shutdown(5s);                                   // graceful: drain, then close
//
// Setup functions (listen, make_dialer, udp_*) throw std::system_error naming the address on
// misuse (bad address, port in use). Nothing on the I/O path throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "nbio/engine/config.hpp"
#include "nbio/engine/conn.hpp"
#include "nbio/engine/dialer.hpp"
#include "nbio/engine/handler.hpp"
#include "nbio/engine/handler_table.hpp"
#include "nbio/engine/listener.hpp"
#include "nbio/engine/loop.hpp"
#include "nbio/engine/udp.hpp"
#include "nbio/engine/upgrade_target.hpp"

namespace nbio {

namespace detail {
class engine_impl;
}

struct engine_stats {
  loop_stats total;
  std::vector<loop_stats> loops;
  // Bytes of write-queue blocks in use now, all loops together: what
  // engine_options::max_write_queue_total bounds (counted in whole 4 KiB blocks).
  std::uint64_t write_queued = 0;
};

class engine {
 public:
  explicit engine(engine_options config = {});
  // Stops (as stop()) if still running.
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Setup, any thread. Binds and listens on `addr` ("0.0.0.0:80", "[::]:80", "unix:/path";
  // port 0 picks a free port: see listener::local_address()). The handler is copied once.
  template <class Handler>
  listener& listen(std::string_view addr, Handler handler, listen_options options = {}) {
    detail::check_conn_handler<Handler>();  // handler.hpp: what a handler is
    return listen_table(addr, detail::make_handler_table(std::move(handler), options.conn),
                        options);
  }
  // Setup, any thread. A dialer for outgoing connections served by `handler`.
  template <class Handler>
  dialer& make_dialer(Handler handler, dial_options options = {}) {
    detail::check_conn_handler<Handler>();
    return make_dialer_table(detail::make_handler_table(std::move(handler), options.conn), options);
  }
  // Any thread. A handler that connections can move onto with conn::rebind() (a protocol
  // upgrade). The engine owns it until it is destroyed; make one per upgrade target, not one
  // per connection.
  template <class Handler>
  upgrade_target& make_upgrade_target(Handler handler, conn_options options = {}) {
    detail::check_conn_handler<Handler>();
    return make_upgrade_target_table(detail::make_handler_table(std::move(handler), options));
  }
  // Setup, any thread. One UDP socket on loop `loop_index` with a datagram handler.
  template <class Handler>
  udp_socket& udp_bind(std::string_view addr, Handler handler, std::size_t loop_index = 0) {
    detail::check_datagram_handler<Handler>();
    return udp_bind_table(addr, detail::make_udp_handler_table(std::move(handler), udp_options{}),
                          loop_index);
  }
  // Setup, any thread. UDP virtual connections: one socket per loop. Returns the bound address.
  template <class Handler>
  address udp_listen(std::string_view addr, Handler handler, udp_options options = {}) {
    detail::check_peer_handler<Handler>();
    return udp_listen_table(addr, detail::make_udp_handler_table(std::move(handler), options));
  }

  // Starts the loop threads. Returns at once.
  void start();
  // Blocks until stop() or shutdown() is called from another thread or a handler.
  void wait();
  // start(), then wait(): for a main() that has nothing else to do.
  void run();
  // Closes every connection now with errc::shutdown (on_close runs on each connection's
  // thread), closes the listeners and joins all threads. Idempotent. From a handler (a loop or
  // blocking-mode connection thread) it only asks the loops to stop; wait() or the destructor
  // then joins them.
  void stop();
  // Graceful: stops accepting, asks every connection to finish (on_shutdown, or close after
  // flushing its write queue), waits until all are closed or `deadline` passes, then stop().
  // Returns true when every connection finished before the deadline. Not from a handler (it
  // waits for the loops; throws std::logic_error there): a handler calls stop() instead.
  bool shutdown(std::chrono::milliseconds deadline);
  bool running() const noexcept;

  engine_stats stats() const;
  std::size_t loop_count() const noexcept;
  loop& loop_at(std::size_t index) noexcept;
  const engine_options& options() const noexcept;

 private:
  listener& listen_table(std::string_view addr, detail::handler_table* cls,
                         const listen_options& options);
  dialer& make_dialer_table(detail::handler_table* cls, const dial_options& options);
  upgrade_target& make_upgrade_target_table(detail::handler_table* cls);
  udp_socket& udp_bind_table(std::string_view addr, detail::udp_handler_table* cls,
                             std::size_t loop);
  address udp_listen_table(std::string_view addr, detail::udp_handler_table* cls);

  std::unique_ptr<detail::engine_impl> impl_;
};

}  // namespace nbio
