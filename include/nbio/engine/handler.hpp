// Public. What a handler is, and the checks that refuse a wrong one at compile time.
//
// A handler is a class with the on_* members it needs; the engine calls those it finds. A
// connection handler (engine::listen, make_dialer, make_upgrade_target) has any of
//   void on_open(nbio::conn&);
//   void on_data(nbio::conn&, std::string_view bytes);  // view valid during the call only
//   void on_close(nbio::conn&, std::error_code first_cause);
//   void on_drained(nbio::conn&);       // the write queue just became empty
//   void on_end(nbio::conn&);           // the peer half-closed; absent: close after flushing
//   void on_shutdown(nbio::conn&);      // graceful shutdown began; absent: close after flushing
//   bool on_read_timeout(nbio::conn&);  // the read deadline passed: true keeps the connection
//   using conn_data = T;                // per-connection state, in the connection's own slot
// A datagram handler (engine::udp_bind) has
//   void on_datagram(nbio::udp_socket&, std::string_view payload, const nbio::address& from);
// and a UDP peer handler (engine::udp_listen) any of
//   void on_open(nbio::udp_peer&);
//   void on_data(nbio::udp_peer&, std::string_view payload);
//   void on_close(nbio::udp_peer&, std::error_code);
//   using peer_data = T;
//
// The handler is moved into the listener, dialer or socket that calls it; std::ref(h) passes
// a reference instead (for a handler holding a mutex, or one the caller reads afterwards),
// and the object must then outlive the engine's run.
//
// Where a handler is passed in, a static_assert names what is wrong: a type that is not a
// class, a class with none of these members, or a member with one of these names that cannot
// be called as shown ("on_data must be callable as on_data(nbio::conn&, std::string_view)").
// A member is found by name when it is one non-template function or data member; an
// overloaded or template member counts when one of its forms takes the arguments shown. The
// concepts conn_handler, datagram_handler and peer_handler say the same as a bool, for a
// library's own requires-clauses.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <new>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace nbio {

// The most bytes of per-connection state a slot holds (conn_data, conn_options::reserve_data,
// a WebSocket handler's conn_data with the layer's state): slots live in 64 KiB chunks, and
// larger state belongs on the heap with a pointer to it in conn_data. Setup throws
// std::invalid_argument past it.
inline constexpr std::size_t max_slot_data = 16u << 10;

class conn;
class udp_socket;
class udp_peer;
class address;

namespace detail {

// The handler's class: W itself, or T for a std::reference_wrapper<T> (std::ref(h)).
template <class W>
using handler_type = std::remove_reference_t<std::unwrap_reference_t<W>>;

// Where a table of calls keeps its handler: a moved-in object it deletes (`destroy` is set to
// do that), or the caller's own object for std::ref(h) (nothing to delete).
template <class W>
void* hold_handler(W& handler, void (*&destroy)(void*)) {
  using H = handler_type<W>;
  if constexpr (std::is_same_v<W, H>) {
    destroy = [](void* h) { delete static_cast<H*>(h); };
    return new H(std::move(handler));
  } else {
    return &handler.get();
  }
}

// Builds and destroys a handler's per-connection state in a slot (a table's construct_data
// and destroy_data).
template <class T>
void construct_slot(void* p) {
  ::new (p) T();
}
template <class T>
void destroy_slot(void* p) noexcept {
  static_cast<T*>(p)->~T();
}

// Per-connection state types: default-constructed before on_open, destroyed after on_close,
// in the connection's own slot (at most 16-byte aligned, at most max_slot_data bytes).
template <class T>
concept slot_data = std::is_default_constructible_v<T> && std::is_nothrow_destructible_v<T> &&
                        alignof(T) <= 16 &&
                    sizeof(T) <= max_slot_data;

// One recognised member: `named_*` (a member of that name exists, whatever it is) and
// `takes_*` (it can be called with the engine's arguments). A name is found through a probe
// that derives from H and from a base declaring every recognised name: where H declares it
// too (an overload set, a template, a private member), the probe's lookup is ambiguous. For a
// final class, which cannot be derived from, only a single non-template member is found.
struct probe_names {
  void on_open();
  void on_data();
  void on_close();
  void on_drained();
  void on_end();
  void on_shutdown();
  void on_read_timeout();
  void on_datagram();
  void on_message();
};
template <class H>
struct probe : H, probe_names {};
template <class H>
concept derivable = std::is_class_v<H> && !std::is_final_v<H> && !std::is_union_v<H>;

#define NBIO_DETAIL_NAMED(name)     \
  template <class H>                \
  concept named_##name = requires { \
    &H::name;                       \
  }                                 \
  || (derivable<H> && !requires { &probe<H>::name; });
// One macro for nine names: each concept is the same two lines with another member name.
NBIO_DETAIL_NAMED(on_open)
NBIO_DETAIL_NAMED(on_data)
NBIO_DETAIL_NAMED(on_close)
NBIO_DETAIL_NAMED(on_drained)
NBIO_DETAIL_NAMED(on_end)
NBIO_DETAIL_NAMED(on_shutdown)
NBIO_DETAIL_NAMED(on_read_timeout)
NBIO_DETAIL_NAMED(on_datagram)
NBIO_DETAIL_NAMED(on_message)
#undef NBIO_DETAIL_NAMED

template <class H, class C>
concept takes_on_open = requires(H& h, C& c) {
  h.on_open(c);
};
template <class H, class C>
concept takes_on_data = requires(H& h, C& c, std::string_view d) {
  h.on_data(c, d);
};
template <class H, class C>
concept takes_on_close = requires(H& h, C& c, std::error_code e) {
  h.on_close(c, e);
};
template <class H>
concept takes_on_drained = requires(H& h, conn& c) {
  h.on_drained(c);
};
template <class H>
concept takes_on_end = requires(H& h, conn& c) {
  h.on_end(c);
};
template <class H>
concept takes_on_shutdown = requires(H& h, conn& c) {
  h.on_shutdown(c);
};
template <class H>
concept takes_on_read_timeout = requires(H& h, conn& c) {
  { h.on_read_timeout(c) } -> std::convertible_to<bool>;
};
template <class H, class S = udp_socket, class A = address>
concept takes_on_datagram = requires(H& h, S& s, std::string_view d, const A& a) {
  h.on_datagram(s, d, a);
};

// A member is wrong when its name is there but the call is not.
template <class H, bool named, bool takes>
inline constexpr bool member_ok = !named || takes;

}  // namespace detail

template <class H>
concept conn_handler =
    std::is_class_v<H> && std::is_move_constructible_v<H> &&
    (detail::takes_on_open<H, conn> || detail::takes_on_data<H, conn> ||
     detail::takes_on_close<H, conn> || detail::takes_on_drained<H> || detail::takes_on_end<H> ||
     detail::takes_on_shutdown<H> ||
     detail::takes_on_read_timeout<H>)&&detail::member_ok<H, detail::named_on_open<H>,
                                                          detail::takes_on_open<H, conn>>&& detail::
        member_ok<H, detail::named_on_data<H>, detail::takes_on_data<H, conn>>&& detail::member_ok<
            H, detail::named_on_close<H>, detail::takes_on_close<H, conn>>&& detail::
            member_ok<H, detail::named_on_drained<H>, detail::takes_on_drained<H>>&& detail::
                member_ok<H, detail::named_on_end<H>, detail::takes_on_end<H>>&& detail::member_ok<
                    H, detail::named_on_shutdown<H>, detail::takes_on_shutdown<H>>&& detail::
                    member_ok<H, detail::named_on_read_timeout<H>,
                              detail::takes_on_read_timeout<H>> &&
    (!requires { typename H::conn_data; } || detail::slot_data<typename H::conn_data>);

namespace detail {

// The checks behind conn_handler, one static_assert each, so the compiler names the member.
template <class W, class H = nbio::detail::handler_type<W>>
consteval void check_conn_handler() {
  static_assert(!std::is_const_v<H>,
                "nbio: a handler passed by reference must be std::ref(h), not std::cref(h): "
                "its calls are not const");
  static_assert(std::is_class_v<H>,
                "nbio: a connection handler is a class with on_* members (on_open, on_data, "
                "on_close, on_drained, on_end, on_shutdown, on_read_timeout); this type is not "
                "a class");
  if constexpr (std::is_class_v<H>) {
    static_assert(!std::is_same_v<W, H> || std::is_move_constructible_v<H>,
                  "nbio: a handler is moved in where it is passed; make it movable, or pass "
                  "std::ref(h) to keep your own");
    static_assert(member_ok<H, named_on_open<H>, takes_on_open<H, conn>>,
                  "nbio: on_open must be callable as on_open(nbio::conn&)");
    static_assert(member_ok<H, named_on_data<H>, takes_on_data<H, conn>>,
                  "nbio: on_data must be callable as on_data(nbio::conn&, std::string_view)");
    static_assert(member_ok<H, named_on_close<H>, takes_on_close<H, conn>>,
                  "nbio: on_close must be callable as on_close(nbio::conn&, std::error_code)");
    static_assert(member_ok<H, named_on_drained<H>, takes_on_drained<H>>,
                  "nbio: on_drained must be callable as on_drained(nbio::conn&)");
    static_assert(member_ok<H, named_on_end<H>, takes_on_end<H>>,
                  "nbio: on_end must be callable as on_end(nbio::conn&)");
    static_assert(member_ok<H, named_on_shutdown<H>, takes_on_shutdown<H>>,
                  "nbio: on_shutdown must be callable as on_shutdown(nbio::conn&)");
    static_assert(member_ok<H, named_on_read_timeout<H>, takes_on_read_timeout<H>>,
                  "nbio: on_read_timeout must be callable as bool on_read_timeout(nbio::conn&)");
    static_assert(takes_on_open<H, conn> || takes_on_data<H, conn> || takes_on_close<H, conn> ||
                      takes_on_drained<H> || takes_on_end<H> || takes_on_shutdown<H> ||
                      takes_on_read_timeout<H> || named_on_open<H> || named_on_data<H> ||
                      named_on_close<H> || named_on_drained<H> || named_on_end<H> ||
                      named_on_shutdown<H> || named_on_read_timeout<H>,
                  "nbio: a connection handler needs at least one of on_open, on_data, on_close, "
                  "on_drained, on_end, on_shutdown, on_read_timeout");
    if constexpr (requires { typename H::conn_data; })
      static_assert(slot_data<typename H::conn_data>,
                    "nbio: conn_data must be default-constructible, nothrow-destructible, at most "
                    "16-byte aligned and at most max_slot_data (16 KiB) bytes");
  }
}

}  // namespace detail

template <class H>
concept datagram_handler =
    std::is_class_v<H> && std::is_move_constructible_v<H> && detail::takes_on_datagram<H>;

template <class H>
concept peer_handler =
    std::is_class_v<H> && std::is_move_constructible_v<H> &&
    (detail::takes_on_open<H, udp_peer> || detail::takes_on_data<H, udp_peer> ||
     detail::takes_on_close<H, udp_peer>)&&detail::
        member_ok<H, detail::named_on_open<H>, detail::takes_on_open<H, udp_peer>>&& detail::
            member_ok<H, detail::named_on_data<H>, detail::takes_on_data<H, udp_peer>>&& detail::
                member_ok<H, detail::named_on_close<H>, detail::takes_on_close<H, udp_peer>> &&
    (!requires { typename H::peer_data; } || detail::slot_data<typename H::peer_data>);

namespace detail {

template <class W, class H = nbio::detail::handler_type<W>>
consteval void check_datagram_handler() {
  static_assert(!std::is_const_v<H>,
                "nbio: a handler passed by reference must be std::ref(h), not std::cref(h): "
                "its calls are not const");
  static_assert(std::is_class_v<H>,
                "nbio: a datagram handler is a class with on_datagram(nbio::udp_socket&, "
                "std::string_view, const nbio::address&); this type is not a class");
  if constexpr (std::is_class_v<H>) {
    static_assert(!std::is_same_v<W, H> || std::is_move_constructible_v<H>,
                  "nbio: a handler is moved in where it is passed; make it movable, or pass "
                  "std::ref(h) to keep your own");
    static_assert(takes_on_datagram<H>,
                  "nbio: on_datagram must be callable as on_datagram(nbio::udp_socket&, "
                  "std::string_view, const nbio::address&)");
  }
}

template <class W, class H = nbio::detail::handler_type<W>>
consteval void check_peer_handler() {
  static_assert(!std::is_const_v<H>,
                "nbio: a handler passed by reference must be std::ref(h), not std::cref(h): "
                "its calls are not const");
  static_assert(std::is_class_v<H>,
                "nbio: a UDP peer handler is a class with on_open, on_data or on_close taking "
                "nbio::udp_peer&; this type is not a class");
  if constexpr (std::is_class_v<H>) {
    static_assert(!std::is_same_v<W, H> || std::is_move_constructible_v<H>,
                  "nbio: a handler is moved in where it is passed; make it movable, or pass "
                  "std::ref(h) to keep your own");
    static_assert(member_ok<H, named_on_open<H>, takes_on_open<H, udp_peer>>,
                  "nbio: on_open must be callable as on_open(nbio::udp_peer&)");
    static_assert(member_ok<H, named_on_data<H>, takes_on_data<H, udp_peer>>,
                  "nbio: on_data must be callable as on_data(nbio::udp_peer&, std::string_view)");
    static_assert(member_ok<H, named_on_close<H>, takes_on_close<H, udp_peer>>,
                  "nbio: on_close must be callable as on_close(nbio::udp_peer&, std::error_code)");
    static_assert(takes_on_open<H, udp_peer> || takes_on_data<H, udp_peer> ||
                      takes_on_close<H, udp_peer> || named_on_open<H> || named_on_data<H> ||
                      named_on_close<H>,
                  "nbio: a UDP peer handler needs at least one of on_open, on_data, on_close");
    if constexpr (requires { typename H::peer_data; })
      static_assert(slot_data<typename H::peer_data>,
                    "nbio: peer_data must be default-constructible, nothrow-destructible, at most "
                    "16-byte aligned and at most max_slot_data (16 KiB) bytes");
  }
}

}  // namespace detail
}  // namespace nbio
