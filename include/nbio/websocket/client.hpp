// Public. WebSocket client connections (RFC 6455 4.1) with the server's handler API.
//
//   struct printer {
//     void on_open(nbio::websocket::connection& ws) { ws.send("hello"); }
//     void on_message(nbio::websocket::connection& ws, std::string_view d, bool) {
//       std::printf("%.*s\n", int(d.size()), d.data());
//       ws.close();
//     }
//   };
//   nbio::websocket::client cl(eng, printer{});
//   cl.connect("ws://127.0.0.1:8080/ws", [](std::error_code ec) { /* failed: ec */ });
//
// wss:// URLs (port 443 by default) connect through TLS (nbio/tls) first, with
// endpoint_options::tls as the context, or, when that is null, a default one made on the first
// wss:// connect: the system's trust store, host-name checking, ALPN "http/1.1":
//   nbio::websocket::client cl(eng, printer{},
//                              {.tls = nbio::tls::context::client({.ca_file = "ca.pem"})});
//   cl.connect("wss://example.com/chat");
// The URL's host is the SNI, the name checked against the certificate (unless the context
// names one) and, with the port when the URL has one, the Host field. A refused certificate or
// another failed TLS handshake calls on_error with the TLS layer's error (nbio/tls/error.hpp:
// "certificate verify failed: certificate has expired").
//
// connect() dials the host (a name is resolved off the loops), sends the upgrade with a fresh
// Sec-WebSocket-Key and checks the answer: 101, Upgrade: websocket, Connection: upgrade, the
// Sec-WebSocket-Accept of our key, a subprotocol among those offered and no extension (none is
// offered yet). Frames the server sent right behind its 101 are read. Then the connection is a
// WebSocket connection like a server's (connection.hpp), except that every frame it sends is
// masked with a fresh random key. A failed dial or handshake calls on_error with the reason
// (nbio::errc for the dial, nbio::tls::tls_category() codes for the TLS handshake,
// websocket::errc::handshake_* and bad_url, http::errc for an answer that is not HTTP) and the
// handler hears nothing of that connection.
//
// Thread affinity: connect() from any thread; the handler and on_error on loop threads.
// Lifetime: the client outlives the engine's run. The handler (handler.hpp) is checked and
// copied once, as for the server.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "nbio/engine/engine.hpp"
#include "nbio/tls/context.hpp"
#include "nbio/websocket/endpoint_options.hpp"
#include "nbio/websocket/frame_parser.hpp"
#include "nbio/websocket/handler.hpp"
#include "nbio/websocket/server.hpp"

namespace nbio::websocket {

class client {
 public:
  template <class Handler>
  client(nbio::engine& eng, Handler h, endpoint_options options = {})
      : client(eng, detail::make_callbacks(std::move(h)), std::move(options)) {}
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Any thread: one connection to `url` (ws[s]://host[:port][/path][?query]).
  void connect(std::string_view url, std::function<void(std::error_code)> on_error = {});

  struct shared;  // private

 private:
  client(nbio::engine& eng, std::unique_ptr<detail::callbacks> cb, endpoint_options options);

  std::shared_ptr<shared> shared_;
};

}  // namespace nbio::websocket
