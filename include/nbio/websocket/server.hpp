// Public. WebSocket endpoints on the HTTP server: a route upgrades, and from then on the
// connection carries only its WebSocket state (RFC 6455).
//
//   struct echo {
//     void on_message(nbio::websocket::connection& ws, std::string_view d, bool binary) {
//       ws.send(d, binary);
//     }
//   };
//   nbio::websocket::server ws(eng, echo{});
//   mux.handle("GET /ws", ws.upgrade());
//   nbio::http::server srv(eng, mux);
//   srv.listen("127.0.0.1:8080");  // reserves the room an upgrade needs by itself
//
// The handler (handler.hpp: on_open, on_message, on_close, on_drained, conn_data) is copied
// once, like the engine's.
// upgrade() answers a bad handshake with 400 (426 with Sec-WebSocket-Version: 13 for another
// version, 403 when check_origin refuses) and a reason; a good one with 101, after which the
// HTTP layer lets go of the connection (response_writer::hijack) and this layer reads frames in
// place from the loop's buffer: a message that arrives whole in one read is handed to
// on_message without a copy; only a fragmented or incomplete message is assembled, in a buffer
// that exists while it does. Pings are answered, the closing handshake is completed (the
// peer's code echoed), and protocol errors close with their code (1002, 1007, 1009). The bytes
// of messages being assembled are bounded per message (limits.max_message: 1009) and over all
// connections (max_buffered_bytes: the largest holders get 1008).
//
// Thread affinity: handlers run on the connection's thread. Lifetime: the server outlives the
// engine's run (stop the engine first), as http::server does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nbio/engine/engine.hpp"
#include "nbio/http/response_writer.hpp"
#include "nbio/websocket/connection.hpp"
#include "nbio/websocket/deflate.hpp"
#include "nbio/websocket/endpoint_options.hpp"
#include "nbio/websocket/frame_parser.hpp"
#include "nbio/websocket/handler.hpp"

namespace nbio::websocket {

// server::stats(): counters over all loops (relaxed reads, for statistics).
struct server_stats {
  std::uint64_t buffered_bytes = 0;         // held now by messages being assembled
  std::uint64_t buffering_connections = 0;  // connections holding some of those bytes now
  std::uint64_t budget_evictions = 0;       // connections failed with 1008 past max_buffered_bytes
};

class server {
 public:
  // Setup, any thread. The handler is checked (handler.hpp) and copied once.
  template <class Handler>
  server(nbio::engine& eng, Handler h, endpoint_options options = {})
      : server(eng, detail::make_callbacks(std::move(h)), std::move(options)) {}
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // The HTTP handler that upgrades (a route of a serve_mux, or a whole server's handler). Its
  // takeover_bytes() is the slot a WebSocket connection of this handler needs: the listener
  // that serves it reserves that much.
  http::handler upgrade();

  const endpoint_options& options() const noexcept;
  // Any thread.
  server_stats stats() const noexcept;

  struct shared;  // what the server's connections share (private)

 private:
  server(nbio::engine& eng, std::unique_ptr<detail::callbacks> cb, endpoint_options options);

  std::shared_ptr<shared> shared_;
  nbio::upgrade_target* target_;
};

}  // namespace nbio::websocket
