// Public (detail). How a handler type (handler.hpp) becomes the per-listener table a
// connection points at.
//
// The handler object is stored once per listener or dialer; every connection of it holds one
// pointer to this table. Calls go through plain function pointers made from the handler's
// type: one indirect call per event, no std::function and no virtual call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "nbio/engine/config.hpp"
#include "nbio/engine/handler.hpp"
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

struct handler_table {
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

  // The slot room a connection of this table needs: its conn_data, or reserve_data when
  // larger (what accept sizes a slot by, and what rebind checks against data_capacity()).
  std::uint32_t slot_bytes() const noexcept { return std::max(data_size, opts.reserve_data); }

  handler_table() = default;
  handler_table(const handler_table&) = delete;
  handler_table& operator=(const handler_table&) = delete;
  ~handler_table() {
    if (destroy_handler) destroy_handler(handler);
  }
};

template <class W>
handler_table* make_handler_table(W handler, const conn_options& opts) {
  using H = nbio::detail::handler_type<W>;
  auto* cls = new handler_table;
  cls->handler = hold_handler(handler, cls->destroy_handler);
  if constexpr (takes_on_open<H, conn>)
    cls->on_open = [](void* h, conn& c) { static_cast<H*>(h)->on_open(c); };
  if constexpr (takes_on_data<H, conn>)
    cls->on_data = [](void* h, conn& c, std::string_view d) { static_cast<H*>(h)->on_data(c, d); };
  if constexpr (takes_on_close<H, conn>)
    cls->on_close = [](void* h, conn& c, std::error_code e) { static_cast<H*>(h)->on_close(c, e); };
  if constexpr (takes_on_drained<H>)
    cls->on_drained = [](void* h, conn& c) { static_cast<H*>(h)->on_drained(c); };
  if constexpr (takes_on_end<H>)
    cls->on_end = [](void* h, conn& c) { static_cast<H*>(h)->on_end(c); };
  if constexpr (takes_on_shutdown<H>)
    cls->on_shutdown = [](void* h, conn& c) { static_cast<H*>(h)->on_shutdown(c); };
  if constexpr (takes_on_read_timeout<H>)
    cls->on_read_timeout = [](void* h, conn& c) -> bool {
      return static_cast<H*>(h)->on_read_timeout(c);
    };
  using data_t = typename conn_data_of<H>::type;
  if constexpr (!std::is_void_v<data_t>) {
    cls->data_size = sizeof(data_t);
    cls->data_type = &type_tag<data_t>::id;
    cls->construct_data = &construct_slot<data_t>;
    cls->destroy_data = &destroy_slot<data_t>;
  }
  cls->opts = opts;
  cls->read_timeout_ms = timer_wheel::clamp_delay(opts.read_timeout.count());
  cls->write_timeout_ms = timer_wheel::clamp_delay(opts.write_timeout.count());
  cls->idle_timeout_ms = timer_wheel::clamp_delay(opts.idle_timeout.count());
  return cls;
}

}  // namespace detail
}  // namespace nbio
