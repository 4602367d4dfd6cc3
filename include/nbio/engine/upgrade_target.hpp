// Public. A handler that live connections can be moved onto: how a protocol upgrade hands a
// connection over (HTTP to WebSocket, a CONNECT tunnel, STARTTLS-style switches).
//
//   nbio::upgrade_target& ws = eng.make_upgrade_target(websocket_handler{}, {.idle_timeout =
//   120s});
//   ...
//   c.rebind(ws, bytes_read_past_the_upgrade);  // on the connection's thread
//
// An upgrade target is a handler table like a listener's or a dialer's, without a socket of its
// own. The engine owns it until it is destroyed, so connections may point at it for as long as they
// live. conn::rebind() says what moving onto it does.
#pragma once

#include <cstdint>
#include <memory>

#include "nbio/engine/handler_table.hpp"

namespace nbio {

class upgrade_target {
 public:
  explicit upgrade_target(detail::handler_table* cls) noexcept;
  ~upgrade_target();
  upgrade_target(const upgrade_target&) = delete;
  upgrade_target& operator=(const upgrade_target&) = delete;

  const detail::handler_table& cls() const noexcept { return *cls_; }
  // The slot room a connection needs to move onto it: its handler's conn_data, or the
  // target's conn_options::reserve_data when larger. An HTTP route that hijacks onto it
  // carries this (http::handler's takeover_bytes), so the listener reserves it.
  std::uint32_t slot_bytes() const noexcept { return cls_->slot_bytes(); }

 private:
  std::unique_ptr<detail::handler_table> cls_;
};

}  // namespace nbio
