// Private. A listener: its bound address, its connection class, and one listening socket per
// loop (reuseport) or one on loop 0 (acceptor).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "nbio/engine/config.hpp"
#include "nbio/engine/handler_table.hpp"
#include "nbio/engine/listener.hpp"

namespace nbio::detail {

class loop_impl;
class listener_impl;

struct alignas(8) listen_socket {
  int fd = -1;
  listener_impl* owner = nullptr;
  loop_impl* loop = nullptr;
  bool paused = false;  // EMFILE: out of the poller until the retry timer
};

class listener_impl final : public listener {
 public:
  listener_impl(address addr, std::unique_ptr<handler_table> cls, listen_options options)
      : addr_(std::move(addr)), cls_(std::move(cls)), options_(options) {}
  ~listener_impl();

  const address& local_address() const noexcept { return addr_; }
  const handler_table& cls() const noexcept { return *cls_; }
  void cls_owner(listener_impl* self) noexcept { cls_->owner = self; }
  const listen_options& options() const noexcept { return options_; }

  // Mixed and blocking modes: claims a blocking slot when one is free.
  bool claim_blocking() noexcept;
  void release_blocking() noexcept { blocking_online_.fetch_sub(1, std::memory_order_relaxed); }
  bool over_cap() const noexcept {
    return options_.max_connections && online() >= options_.max_connections;
  }
  void opened() noexcept { online_.fetch_add(1, std::memory_order_relaxed); }
  void closed() noexcept { online_.fetch_sub(1, std::memory_order_relaxed); }
  std::size_t online() const noexcept { return online_.load(std::memory_order_relaxed); }
  std::size_t blocking_online() const noexcept {
    return blocking_online_.load(std::memory_order_relaxed);
  }
  // Loop for the next connection handed out by the acceptor.
  std::size_t next_loop(std::size_t loops) noexcept {
    return rr_.fetch_add(1, std::memory_order_relaxed) % loops;
  }

  std::vector<std::unique_ptr<listen_socket>> sockets;

 private:
  address addr_;
  std::unique_ptr<handler_table> cls_;
  listen_options options_;
  std::atomic<std::size_t> online_{0};
  std::atomic<std::size_t> blocking_online_{0};
  std::atomic<std::size_t> rr_{0};
};

}  // namespace nbio::detail
