// Public. WebSocket endpoints on the HTTP server: a route upgrades, and from then on the
// connection carries only its WebSocket state (RFC 6455).
//
//   struct echo : nbio::websocket::handler {
//     void on_message(nbio::websocket::connection& ws, std::string_view d, bool binary) override {
//       ws.send(d, binary);
//     }
//   } h;
//   nbio::websocket::server ws(eng, h);
//   mux.handle("GET /ws", ws.upgrade());
//   nbio::listen_options lo;
//   lo.conn.reserve_data = nbio::websocket::server::reserve_data;  // room for the upgrade
//   http_server.listen("127.0.0.1:8080", lo);
//
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
// Thread affinity: handlers run on the connection's thread. Lifetime: the handler object and
// the server outlive the engine's run (stop the engine first), as for http::server.
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
#include "nbio/websocket/frame_parser.hpp"

namespace nbio::websocket {

class handler {
 public:
  virtual ~handler() = default;
  virtual void on_open(connection&) {}
  // A whole message: `data` is valid during the call (text is valid UTF-8).
  virtual void on_message(connection& ws, std::string_view data, bool binary) = 0;
  // Once, when the connection is gone: the code and reason of the peer's close frame, or
  // 1006 (abnormal) when none came.
  virtual void on_close(connection&, std::uint16_t code, std::string_view reason) {
    (void)code;
    (void)reason;
  }
  // The write queue just emptied (a slow client caught up).
  virtual void on_drained(connection&) {}
};

struct server_options {
  frame_limits limits{};  // max_message: 1009 past it
  // The closing handshake: after sending a close frame, how long to wait for the peer's.
  std::chrono::milliseconds close_timeout{5'000};
  // Keepalive: after this long without a byte from the peer, send a ping; close (1006 to the
  // handler, errc::read_timeout) when nothing comes back within pong_timeout. 0: off.
  std::chrono::milliseconds ping_interval{0};
  std::chrono::milliseconds pong_timeout{10'000};
  // Closes a connection that received nothing for this long (0: never).
  std::chrono::milliseconds idle_timeout{0};
  // Bytes queued for a client that does not read before it is closed (1006 to it).
  std::size_t max_write_queue = 4u << 20;
  // Subprotocols this server speaks, in order of preference ("chat, superchat"); the first one
  // the client offers is chosen.
  std::string subprotocols;
  // Refuses an upgrade (403) whose Origin it returns false for; empty: all accepted.
  std::function<bool(std::string_view origin)> check_origin;
  // permessage-deflate (deflate.hpp): off unless enabled; limits.max_message bounds a message
  // once inflated (1009 past it).
  deflate_options deflate{};
  // Bytes all connections together may hold for messages being assembled (fragmented, or
  // not whole in one read; inflated bytes for compressed ones), all loops counted: each is
  // bounded by limits.max_message, their sum by this. Past it, a connection whose message
  // grows fails with 1008 (policy violation): itself when it holds at least the average, else
  // the largest holder of its loop. 0: unlimited (still counted in stats()). Default 64 MiB.
  std::size_t max_buffered_bytes = 64u << 20;
};

// server::stats(): counters over all loops (relaxed reads, for statistics).
struct server_stats {
  std::uint64_t buffered_bytes = 0;         // held now by messages being assembled
  std::uint64_t buffering_connections = 0;  // connections holding some of those bytes now
  std::uint64_t budget_evictions = 0;       // connections failed with 1008 past max_buffered_bytes
};

class server {
 public:
  // The conn_data a WebSocket connection needs: a listener whose HTTP routes upgrade reserves
  // it (listen_options::conn.reserve_data).
  static const std::uint32_t reserve_data;

  server(nbio::engine& eng, handler& h, server_options options = {});
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // The HTTP handler that upgrades (a route of a serve_mux, or a whole server's handler).
  http::handler upgrade();

  const server_options& options() const noexcept;
  // Any thread.
  server_stats stats() const noexcept;

  struct shared;  // what the server's connections share (private)

 private:
  std::shared_ptr<shared> shared_;
  nbio::binding* binding_;
};

}  // namespace nbio::websocket
