// Public. The options of a WebSocket endpoint: one struct for websocket::server and
// websocket::client, since both run the same session after the handshake (limits, keepalive,
// the closing handshake, compression, queues). The few fields only one side reads say so.
//
//   nbio::websocket::server ws(eng, echo{}, {.close_timeout = 2s, .deflate = {.enabled = true}});
//   nbio::websocket::client cl(eng, printer{}, {.subprotocols = "chat", .connect_timeout = 3s});
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nbio/websocket/deflate.hpp"
#include "nbio/websocket/frame_parser.hpp"

namespace nbio::tls {
class context;
}

namespace nbio::websocket {

struct endpoint_options {
  // max_message: 1009 past it (also a message once inflated).
  frame_limits limits{};
  // The closing handshake: after sending a close frame, how long to wait for the peer's.
  std::chrono::milliseconds close_timeout{5'000};
  // Keepalive: after this long without a byte from the peer, send a ping; close (1006 to the
  // handler, errc::read_timeout) when nothing comes back within pong_timeout. 0: off.
  std::chrono::milliseconds ping_interval{0};
  std::chrono::milliseconds pong_timeout{10'000};
  // Closes a connection that received nothing for this long (0: never).
  std::chrono::milliseconds idle_timeout{0};
  // Bytes queued for a peer that does not read before it is closed (1006 to it). The default
  // holds one message of the default limits.max_message (16 MiB) with its frame header and
  // deflate's overhead on incompressible data (~5 bytes per 16 KiB block), so an echo can send
  // back whatever it accepted (Autobahn 9.1.6 and 9.2.6); the engine's max_write_queue_total
  // (256 MiB) bounds all connections together.
  std::size_t max_write_queue = (16u << 20) + (64u << 10);
  // Subprotocols, in order of preference ("chat, superchat"). A server chooses the first one
  // the client offers; a client offers them (connection::subprotocol() says which one won).
  std::string subprotocols;
  // permessage-deflate (deflate.hpp): off unless enabled. A server accepts offers, a client
  // makes one and checks the answer (errc::handshake_extension for parameters not offered or
  // malformed).
  deflate_options deflate{};
  // Bytes all connections together may hold for messages being assembled (fragmented, or
  // not whole in one read; inflated bytes for compressed ones), all loops counted: each is
  // bounded by limits.max_message, their sum by this. Past it, a connection whose message
  // grows fails with 1008 (policy violation): itself when it holds at least the average, else
  // the largest holder of its loop. 0: unlimited (still counted in server::stats()).
  std::size_t max_buffered_bytes = 64u << 20;

  // Server: refuses an upgrade (403) whose Origin it returns false for; empty: all accepted.
  std::function<bool(std::string_view origin)> check_origin;

  // Client: the dial's limit.
  std::chrono::milliseconds connect_timeout{10'000};
  // Client: from the connection's open to the end of the server's answer.
  std::chrono::milliseconds handshake_timeout{10'000};
  // Client: more fields for the upgrade request (Origin, Authorization, cookies).
  std::vector<std::pair<std::string, std::string>> headers;
  // Client: the TLS context of wss:// connections (nbio::tls::context::client(...)). Null: a
  // default one, made on the first wss:// connect, that verifies against the system's trust
  // store and offers ALPN "http/1.1".
  std::shared_ptr<nbio::tls::context> tls{};
};

}  // namespace nbio::websocket
