// Public. UDP on the event loops: a plain datagram API and per-peer virtual connections.
//
// Plain datagrams (engine::udp_bind): one socket on one loop; the handler has
//   void on_datagram(nbio::udp_socket&, std::string_view payload, const nbio::address& from);
// Virtual connections (engine::udp_listen): one SO_REUSEPORT socket per loop (the kernel keeps
// a peer on one socket); the first datagram from a new peer opens a udp_peer, and the handler
// has any of
//   void on_open(nbio::udp_peer&);
//   void on_data(nbio::udp_peer&, std::string_view payload);
//   void on_close(nbio::udp_peer&, std::error_code);   // errc::peer_expired after idle_timeout
//   using peer_data = T;                               // per-peer state
// All of these run on the socket's loop thread; the udp_socket& / udp_peer& are for that
// thread only and valid during the call (a peer until its on_close returns).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "nbio/core/address.hpp"
#include "nbio/core/error.hpp"
#include "nbio/engine/handler.hpp"
#include "nbio/engine/handler_table.hpp"
#include "nbio/engine/timer_wheel.hpp"

namespace nbio {

class loop;
class udp_socket;
class udp_peer;

struct udp_options {
  // A peer that sends nothing for this long is closed with errc::peer_expired.
  std::chrono::milliseconds idle_timeout = 30s;
  // Peers per socket; datagrams from further new peers are dropped (counted in dropped()).
  std::size_t max_peers = 65536;
  std::size_t max_datagram = 65536;  // receive buffer size (the loop's buffer is used)
};

namespace detail {
class udp_impl;

struct udp_handler_table {
  void* handler = nullptr;
  void (*on_datagram)(void*, udp_socket&, std::string_view, const address&) = nullptr;
  void (*on_open)(void*, udp_peer&) = nullptr;
  void (*on_data)(void*, udp_peer&, std::string_view) = nullptr;
  void (*on_close)(void*, udp_peer&, std::error_code) = nullptr;
  void (*construct_data)(void*) = nullptr;
  void (*destroy_data)(void*) = nullptr;
  void (*destroy_handler)(void*) = nullptr;
  const void* data_type = nullptr;
  std::uint32_t data_size = 0;
  udp_options opts{};

  udp_handler_table() = default;
  udp_handler_table(const udp_handler_table&) = delete;
  udp_handler_table& operator=(const udp_handler_table&) = delete;
  ~udp_handler_table() {
    if (destroy_handler) destroy_handler(handler);
  }
};

template <class H>
struct peer_data_of {
  using type = void;
};
template <class H>
requires requires {
  typename H::peer_data;
}
struct peer_data_of<H> {
  using type = typename H::peer_data;
};

template <class W>
udp_handler_table* make_udp_handler_table(W handler, const udp_options& opts) {
  using H = nbio::detail::handler_type<W>;
  auto* cls = new udp_handler_table;
  cls->handler = hold_handler(handler, cls->destroy_handler);
  cls->opts = opts;
  if constexpr (takes_on_datagram<H>)
    cls->on_datagram = [](void* h, udp_socket& s, std::string_view d, const address& a) {
      static_cast<H*>(h)->on_datagram(s, d, a);
    };
  if constexpr (takes_on_open<H, udp_peer>)
    cls->on_open = [](void* h, udp_peer& p) { static_cast<H*>(h)->on_open(p); };
  if constexpr (takes_on_data<H, udp_peer>)
    cls->on_data = [](void* h, udp_peer& p, std::string_view d) {
      static_cast<H*>(h)->on_data(p, d);
    };
  if constexpr (takes_on_close<H, udp_peer>)
    cls->on_close = [](void* h, udp_peer& p, std::error_code e) {
      static_cast<H*>(h)->on_close(p, e);
    };
  using data_t = typename peer_data_of<H>::type;
  if constexpr (!std::is_void_v<data_t>) {
    cls->data_size = sizeof(data_t);
    cls->data_type = &type_tag<data_t>::id;
    cls->construct_data = &construct_slot<data_t>;
    cls->destroy_data = &destroy_slot<data_t>;
  }
  return cls;
}
}  // namespace detail

class udp_socket {
 public:
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;

  // Loop thread only. Sends one datagram; a full socket buffer drops it (UDP semantics) and
  // returns the errno (EAGAIN).
  std::error_code send_to(const address& to, std::string_view payload);
  const address& local_address() const noexcept;
  nbio::loop& owner_loop() const noexcept;
  std::uint64_t dropped() const noexcept;  // datagrams dropped by the max_peers cap

 protected:
  udp_socket() = default;
  ~udp_socket() = default;
};

class udp_peer {
 public:
  udp_peer(const udp_peer&) = delete;
  udp_peer& operator=(const udp_peer&) = delete;

  // Loop thread only. Sends one datagram to this peer.
  std::error_code write(std::string_view payload);
  // Forgets the peer (on_close with errc::local_close); a later datagram opens a new one.
  void close();
  const address& remote_address() const noexcept { return remote_; }
  udp_socket& socket() const noexcept { return *socket_; }

  template <class T>
  T& data() noexcept {
    return *std::launder(reinterpret_cast<T*>(reinterpret_cast<char*>(this) + data_offset()));
  }

 private:
  friend class detail::udp_impl;
  udp_peer() = default;
  ~udp_peer() = default;
  static constexpr std::size_t data_offset() noexcept;

  timer_link timer_;
  udp_socket* socket_ = nullptr;
  address remote_;
  std::uint32_t last_active_ = 0;
  bool closing_ = false;
  std::error_code cause_;
};

constexpr std::size_t udp_peer::data_offset() noexcept {
  return (sizeof(udp_peer) + 15) & ~15u;
}

}  // namespace nbio
