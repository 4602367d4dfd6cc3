// Private. A UDP socket on a loop, in datagram mode or with per-peer virtual connections.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "nbio/engine/udp.hpp"

namespace nbio::detail {

class loop_impl;

class alignas(8) udp_impl final : public udp_socket {
 public:
  udp_impl(loop_impl& loop, int fd, address local, std::shared_ptr<udp_handler_table> cls,
           bool peers)
      : loop_(loop), fd_(fd), local_(std::move(local)), cls_(std::move(cls)), peers_mode_(peers) {}
  ~udp_impl();

  int fd() const noexcept { return fd_; }
  loop_impl& loop() const noexcept { return loop_; }
  const address& local() const noexcept { return local_; }
  std::uint64_t dropped_count() const noexcept { return dropped_; }

  // Loop thread.
  void on_readable();
  void on_peer_timer(udp_peer& p);
  void close_peer(udp_peer& p, std::error_code reason);
  std::error_code send(const address& to, std::string_view payload);
  void close_all();

  static udp_impl& of(udp_socket& s) noexcept { return static_cast<udp_impl&>(s); }

 private:
  udp_peer* open_peer(const address& from);
  void destroy_peer(udp_peer* p);

  loop_impl& loop_;
  int fd_;
  address local_;
  std::shared_ptr<udp_handler_table> cls_;
  bool peers_mode_;
  std::unordered_map<address, udp_peer*, address_hash> peers_;
  std::vector<udp_peer*> closing_;  // closed, on_close pending (the next wheel advance)
  std::uint64_t dropped_ = 0;
};

}  // namespace nbio::detail
