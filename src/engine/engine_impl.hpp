// Private. The engine's state: its loops, listeners, dialers, UDP sockets and resolver.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/block_depot.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/listener_impl.hpp"
#include "engine/loop_impl.hpp"
#include "engine/resolver.hpp"
#include "engine/udp_impl.hpp"
#include "nbio/engine/config.hpp"
#include "nbio/engine/engine.hpp"

namespace nbio::detail {

// The engine whose loop or blocking-mode connection thread this is (null elsewhere): such a
// thread must not join the engine's threads.
extern thread_local const engine_impl* this_thread_engine;

class engine_impl {
 public:
  static io_backend choose_backend(io_backend wanted);
  engine_impl(nbio::engine& facade, engine_options config);
  ~engine_impl();

  nbio::engine& facade() noexcept { return facade_; }
  const engine_options& options() const noexcept { return config_; }
  std::size_t loop_count() const noexcept { return loops_.size(); }
  loop_impl& loop_at(std::size_t i) noexcept { return *loops_[i]; }
  resolver& names() noexcept { return resolver_; }
  // Milliseconds since the engine was created (the loops' clock).
  std::uint32_t clock_ms() const noexcept;
  // Bytes in write-queue blocks in use, all loops (engine_options::max_write_queue_total).
  std::atomic<std::size_t>& write_queued() noexcept { return write_queued_; }
  block_depot& depot() noexcept { return depot_; }

  listener& listen(std::string_view addr, std::unique_ptr<handler_table> cls,
                   const listen_options& options);
  dialer& make_dialer(std::unique_ptr<handler_table> cls, const dial_options& options);
  upgrade_target& make_upgrade_target(std::unique_ptr<handler_table> cls);
  udp_socket& udp_bind(std::string_view addr, std::unique_ptr<udp_handler_table> cls,
                       std::size_t loop);
  address udp_listen(std::string_view addr, std::unique_ptr<udp_handler_table> cls);

  void start();
  void wait();
  void stop();
  bool shutdown(std::chrono::milliseconds deadline);
  bool running() const noexcept;
  engine_stats stats() const;

 private:
  nbio::engine& facade_;
  engine_options config_;
  std::chrono::steady_clock::time_point epoch_;
  // Before loops_: their write pools point at both.
  std::atomic<std::size_t> write_queued_{0};
  block_depot depot_;
  std::vector<std::unique_ptr<loop_impl>> loops_;
  std::vector<std::unique_ptr<listener_impl>> listeners_;
  std::vector<std::unique_ptr<dialer_impl>> dialers_;
  std::vector<std::unique_ptr<upgrade_target>> targets_;
  std::vector<std::shared_ptr<udp_handler_table>> udp_classes_;
  std::vector<std::unique_ptr<udp_impl>> udps_;
  resolver resolver_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopped_ = false;
  bool stop_requested_ = false;
  bool joining_ = false;  // a stop() is joining the loop threads
};

}  // namespace nbio::detail
