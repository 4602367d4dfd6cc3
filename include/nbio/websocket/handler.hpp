// Public. What a WebSocket handler is (websocket::server, websocket::client), checked where it
// is passed in, and the table of calls made from it.
//
// A WebSocket handler is a class with any of
//   void on_open(nbio::websocket::connection&);
//   void on_message(nbio::websocket::connection&, std::string_view data, bool binary);
//   void on_close(nbio::websocket::connection&, std::uint16_t code, std::string_view reason);
//   void on_drained(nbio::websocket::connection&);  // the write queue just emptied
//   using conn_data = T;  // per-connection state: connection::data<T>()
// the same model as the engine's connection handlers (nbio/engine/handler.hpp): on_message
// gets a whole message, valid during the call (text is valid UTF-8); on_close runs once, with
// the code and reason of the peer's close frame, or 1006 (abnormal) when none came. conn_data
// is built in the connection's own slot, after the engine's and the WebSocket layer's state,
// before on_open, and destroyed after on_close: no allocation. The listener of a server's
// upgrade route reserves room for it by itself (http::handler::takeover_bytes).
//
// The handler is moved in, or referred to when passed as std::ref(h) (then it outlives the
// server or client). A mistake is a compile error naming the member and the signature it must
// have.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>

#include "nbio/engine/handler.hpp"
#include "nbio/engine/handler_table.hpp"

namespace nbio::websocket {

class connection;

namespace detail {

template <class H>
concept takes_on_open = requires(H& h, connection& ws) {
  h.on_open(ws);
};
template <class H>
concept takes_on_message = requires(H& h, connection& ws, std::string_view d, bool binary) {
  h.on_message(ws, d, binary);
};
template <class H>
concept takes_on_close = requires(H& h, connection& ws, std::uint16_t code, std::string_view r) {
  h.on_close(ws, code, r);
};
template <class H>
concept takes_on_drained = requires(H& h, connection& ws) {
  h.on_drained(ws);
};

using nbio::detail::member_ok;
using nbio::detail::named_on_close;
using nbio::detail::named_on_drained;
using nbio::detail::named_on_message;
using nbio::detail::named_on_open;
using nbio::detail::slot_data;

}  // namespace detail

template <class H>
concept handler =
    std::is_class_v<H> && std::is_move_constructible_v<H> &&
    (detail::takes_on_open<H> || detail::takes_on_message<H> || detail::takes_on_close<H> ||
     detail::takes_on_drained<H>)&&detail::member_ok<H, detail::named_on_open<H>,
                                                     detail::takes_on_open<H>>&& detail::
        member_ok<H, detail::named_on_message<H>, detail::takes_on_message<H>>&& detail::
            member_ok<H, detail::named_on_close<H>, detail::takes_on_close<H>>&& detail::member_ok<
                H, detail::named_on_drained<H>, detail::takes_on_drained<H>> &&
    (!requires { typename H::conn_data; } || detail::slot_data<typename H::conn_data>);

namespace detail {

// The checks behind `handler`, one static_assert each, so the compiler names the member.
template <class W, class H = nbio::detail::handler_type<W>>
consteval void check_handler() {
  static_assert(!std::is_const_v<H>,
                "nbio: a handler passed by reference must be std::ref(h), not std::cref(h): "
                "its calls are not const");
  static_assert(std::is_class_v<H>,
                "nbio: a WebSocket handler is a class with on_open, on_message, on_close or "
                "on_drained taking nbio::websocket::connection&; this type is not a class");
  if constexpr (std::is_class_v<H>) {
    static_assert(!std::is_same_v<W, H> || std::is_move_constructible_v<H>,
                  "nbio: a handler is moved in where it is passed; make it movable, or pass "
                  "std::ref(h) to keep your own");
    static_assert(member_ok<H, named_on_open<H>, takes_on_open<H>>,
                  "nbio: on_open must be callable as on_open(nbio::websocket::connection&)");
    static_assert(member_ok<H, named_on_message<H>, takes_on_message<H>>,
                  "nbio: on_message must be callable as on_message(nbio::websocket::connection&, "
                  "std::string_view data, bool binary)");
    static_assert(member_ok<H, named_on_close<H>, takes_on_close<H>>,
                  "nbio: on_close must be callable as on_close(nbio::websocket::connection&, "
                  "std::uint16_t code, std::string_view reason)");
    static_assert(member_ok<H, named_on_drained<H>, takes_on_drained<H>>,
                  "nbio: on_drained must be callable as on_drained(nbio::websocket::connection&)");
    static_assert(takes_on_open<H> || takes_on_message<H> || takes_on_close<H> ||
                      takes_on_drained<H> || named_on_open<H> || named_on_message<H> ||
                      named_on_close<H> || named_on_drained<H>,
                  "nbio: a WebSocket handler needs at least one of on_open, on_message, "
                  "on_close, on_drained");
    if constexpr (requires { typename H::conn_data; })
      static_assert(slot_data<typename H::conn_data>,
                    "nbio: conn_data must be default-constructible, nothrow-destructible, at most "
                    "16-byte aligned and at most max_slot_data (16 KiB) bytes");
  }
}

// Bytes of the WebSocket layer's own state at the start of a connection's slot (the private
// ws_state; session.hpp asserts the two agree). A handler's conn_data follows it.
inline constexpr std::uint32_t state_bytes = 80;

template <class T>
inline constexpr std::uint32_t data_offset = (state_bytes + static_cast<std::uint32_t>(alignof(T)) -
                                              1) &
                                             ~(static_cast<std::uint32_t>(alignof(T)) - 1);

// The calls made from a handler type, stored once per server or client: one indirect call per
// event, as for the engine's handlers (nbio/engine/handler_table.hpp).
struct callbacks {
  void* handler = nullptr;
  void (*on_open)(void*, connection&) = nullptr;
  void (*on_message)(void*, connection&, std::string_view, bool) = nullptr;
  void (*on_close)(void*, connection&, std::uint16_t, std::string_view) = nullptr;
  void (*on_drained)(void*, connection&) = nullptr;
  void (*construct_data)(void*) = nullptr;
  void (*destroy_data)(void*) = nullptr;
  void (*destroy_handler)(void*) = nullptr;
  const void* data_type = nullptr;
  std::uint32_t data_offset = 0;           // where conn_data starts in the slot
  std::uint32_t slot_bytes = state_bytes;  // the slot a connection needs: state and conn_data

  callbacks() = default;
  callbacks(const callbacks&) = delete;
  callbacks& operator=(const callbacks&) = delete;
  ~callbacks() {
    if (destroy_handler) destroy_handler(handler);
  }
};

template <class W>
std::unique_ptr<callbacks> make_callbacks(W handler) {
  check_handler<W>();
  using H = nbio::detail::handler_type<W>;
  auto cb = std::make_unique<callbacks>();
  cb->handler = nbio::detail::hold_handler(handler, cb->destroy_handler);
  if constexpr (takes_on_open<H>)
    cb->on_open = [](void* h, connection& ws) { static_cast<H*>(h)->on_open(ws); };
  if constexpr (takes_on_message<H>)
    cb->on_message = [](void* h, connection& ws, std::string_view d, bool binary) {
      static_cast<H*>(h)->on_message(ws, d, binary);
    };
  if constexpr (takes_on_close<H>)
    cb->on_close = [](void* h, connection& ws, std::uint16_t code, std::string_view reason) {
      static_cast<H*>(h)->on_close(ws, code, reason);
    };
  if constexpr (takes_on_drained<H>)
    cb->on_drained = [](void* h, connection& ws) { static_cast<H*>(h)->on_drained(ws); };
  if constexpr (requires { typename H::conn_data; }) {
    using data_t = typename H::conn_data;
    cb->data_type = &nbio::detail::type_tag<data_t>::id;
    cb->data_offset = data_offset<data_t>;
    cb->slot_bytes = data_offset<data_t> + static_cast<std::uint32_t>(sizeof(data_t));
    cb->construct_data = &nbio::detail::construct_slot<data_t>;
    cb->destroy_data = &nbio::detail::destroy_slot<data_t>;
  }
  return cb;
}

}  // namespace detail
}  // namespace nbio::websocket
