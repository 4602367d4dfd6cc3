// Public (detail). How a handler type becomes the per-listener table a connection points at.
//
// A handler is any class with some of these members (all optional):
//   void on_open(nbio::conn&);
//   void on_data(nbio::conn&, std::string_view bytes);  // view valid during the call only
//   void on_close(nbio::conn&, std::error_code first_cause);
//   void on_drained(nbio::conn&);   // the write queue just became empty
//   void on_end(nbio::conn&);       // the peer half-closed; absent: close after flushing
//   void on_shutdown(nbio::conn&);  // graceful shutdown began; absent: close after flushing
//   bool on_read_timeout(nbio::conn&);  // the read deadline passed: true keeps the connection
//                                   // (the handler acts: sends a ping, sets a new deadline);
//                                   // absent or false: close with errc::read_timeout
//   using conn_data = T;            // per-connection state, in the connection's own slot
// The handler object is stored once per listener or dialer; every connection of it holds one
// pointer to this table. Calls go through plain function pointers made from the handler's
// type: one indirect call per event, no std::function and no virtual call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "nbio/engine/config.hpp"
#include "nbio/engine/timer_wheel.hpp"
#include "nbio/engine/transport.hpp"

namespace nbio {

class conn;

namespace detail {

template <class T>
struct type_tag {
  static constexpr char id = 0;
};

template <class H>
struct conn_data_of {
  using type = void;
};
template <class H>
requires requires {
  typename H::conn_data;
}
struct conn_data_of<H> {
  using type = typename H::conn_data;
};

struct conn_class {
  void* handler = nullptr;
  void (*on_open)(void*, conn&) = nullptr;
  void (*on_data)(void*, conn&, std::string_view) = nullptr;
  void (*on_close)(void*, conn&, std::error_code) = nullptr;
  void (*on_drained)(void*, conn&) = nullptr;
  void (*on_end)(void*, conn&) = nullptr;
  void (*on_shutdown)(void*, conn&) = nullptr;
  bool (*on_read_timeout)(void*, conn&) = nullptr;
  void (*construct_data)(void*) = nullptr;
  void (*destroy_data)(void*) = nullptr;
  void (*destroy_handler)(void*) = nullptr;
  const void* data_type = nullptr;
  std::uint32_t data_size = 0;
  conn_options opts{};
  void* owner = nullptr;              // the listener (detail::listener_impl), null for a dialer
  std::shared_ptr<transport> tls;     // listeners and dialers: TLS for their connections
  std::uint32_t read_timeout_ms = 0;  // opts' timeouts as loop ticks
  std::uint32_t write_timeout_ms = 0;
  std::uint32_t idle_timeout_ms = 0;

  conn_class() = default;
  conn_class(const conn_class&) = delete;
  conn_class& operator=(const conn_class&) = delete;
  ~conn_class() {
    if (destroy_handler) destroy_handler(handler);
  }
};

template <class H>
conn_class* make_conn_class(H handler, const conn_options& opts) {
  auto* cls = new conn_class;
  cls->handler = new H(std::move(handler));
  cls->destroy_handler = [](void* h) { delete static_cast<H*>(h); };
  if constexpr (requires(H & h, conn & c) { h.on_open(c); })
    cls->on_open = [](void* h, conn& c) { static_cast<H*>(h)->on_open(c); };
  if constexpr (requires(H & h, conn & c, std::string_view d) { h.on_data(c, d); })
    cls->on_data = [](void* h, conn& c, std::string_view d) { static_cast<H*>(h)->on_data(c, d); };
  if constexpr (requires(H & h, conn & c, std::error_code e) { h.on_close(c, e); })
    cls->on_close = [](void* h, conn& c, std::error_code e) { static_cast<H*>(h)->on_close(c, e); };
  if constexpr (requires(H & h, conn & c) { h.on_drained(c); })
    cls->on_drained = [](void* h, conn& c) { static_cast<H*>(h)->on_drained(c); };
  if constexpr (requires(H & h, conn & c) { h.on_end(c); })
    cls->on_end = [](void* h, conn& c) { static_cast<H*>(h)->on_end(c); };
  if constexpr (requires(H & h, conn & c) { h.on_shutdown(c); })
    cls->on_shutdown = [](void* h, conn& c) { static_cast<H*>(h)->on_shutdown(c); };
  if constexpr (requires(H & h, conn & c) { h.on_read_timeout(c); })
    cls->on_read_timeout = [](void* h, conn& c) -> bool {
      return static_cast<H*>(h)->on_read_timeout(c);
    };
  using data_t = typename conn_data_of<H>::type;
  if constexpr (!std::is_void_v<data_t>) {
    static_assert(alignof(data_t) <= 16, "conn_data must not need more than 16-byte alignment");
    cls->data_size = sizeof(data_t);
    cls->data_type = &type_tag<data_t>::id;
    cls->construct_data = [](void* p) { ::new (p) data_t(); };
    cls->destroy_data = [](void* p) { static_cast<data_t*>(p)->~data_t(); };
  }
  cls->opts = opts;
  cls->read_timeout_ms = timer_wheel::clamp_delay(opts.read_timeout.count());
  cls->write_timeout_ms = timer_wheel::clamp_delay(opts.write_timeout.count());
  cls->idle_timeout_ms = timer_wheel::clamp_delay(opts.idle_timeout.count());
  return cls;
}

}  // namespace detail
}  // namespace nbio
