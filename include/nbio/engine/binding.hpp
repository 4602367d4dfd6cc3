// Public. A handler that live connections can be moved onto: how a protocol upgrade hands a
// connection over (HTTP to WebSocket, a CONNECT tunnel, STARTTLS-style switches).
//
//   nbio::binding& ws = eng.make_binding(websocket_handler{}, {.idle_timeout = 120s});
//   ...
//   c.rebind(ws, bytes_read_past_the_upgrade);  // on the connection's thread
//
// A binding is a handler table like a listener's or a dialer's, without a socket of its own.
// The engine owns it until it is destroyed, so connections may point at it for as long as they
// live. conn::rebind() says what moving onto it does.
#pragma once

#include <cstdint>
#include <memory>

namespace nbio {

namespace detail {
struct conn_class;
}

class binding {
 public:
  explicit binding(detail::conn_class* cls) noexcept;
  ~binding();
  binding(const binding&) = delete;
  binding& operator=(const binding&) = delete;

  const detail::conn_class& cls() const noexcept { return *cls_; }
  // The slot room a connection needs to move onto it: its handler's conn_data, or the
  // binding's conn_options::reserve_data when larger. An HTTP route that hijacks onto it
  // carries this (http::handler's takeover_bytes), so the listener reserves it.
  std::uint32_t slot_bytes() const noexcept;

 private:
  std::unique_ptr<detail::conn_class> cls_;
};

}  // namespace nbio
