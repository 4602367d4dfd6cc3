// Test support. A websocket::server behind an http::server on its own engine (GET /ws upgrades),
// listening on 127.0.0.1 (port chosen by the kernel), started on construction and stopped on
// destruction; and the client side of raw-frame tests: the handshake, masked client frames and
// the unmasked frames a server must send.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nbio/http/serve_mux.hpp"
#include "nbio/http/server.hpp"
#include "nbio/websocket/frame.hpp"
#include "nbio/websocket/server.hpp"
#include "support/io_mode_name.hpp"

namespace nbio_test {

class ws_test_server {
 public:
  // `h` (a WebSocket handler, held by reference) outlives the server (declare it before).
  // `tls`: serve WSS (a tls::context::server), null: plain.
  template <class Handler>
  ws_test_server(Handler& h, nbio::io_mode mode, nbio::websocket::endpoint_options o = {},
                 std::shared_ptr<nbio::transport> tls = nullptr)
      : eng_({.loops = 2}), ws_(eng_, std::ref(h), o) {
    mux_.handle("GET /ws", ws_.upgrade());
    http_ = std::make_unique<nbio::http::server>(eng_, mux_);
    nbio::listen_options lo = listen_for(mode);
    lo.tls = std::move(tls);
    address_ = http_->listen("127.0.0.1:0", lo).local_address();
    eng_.start();
  }
  ~ws_test_server() { eng_.stop(); }
  ws_test_server(const ws_test_server&) = delete;
  ws_test_server& operator=(const ws_test_server&) = delete;

  const nbio::address& address() const { return address_; }
  nbio::engine& engine() { return eng_; }
  nbio::websocket::server& ws() { return ws_; }

 private:
  nbio::engine eng_;
  nbio::websocket::server ws_;
  nbio::http::serve_mux mux_;
  std::unique_ptr<nbio::http::server> http_;
  nbio::address address_;
};

inline constexpr std::string_view ws_upgrade_request =
    "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
// The answer to ws_upgrade_request (RFC 6455 1.3's example key).
inline constexpr std::string_view ws_switching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

// A client frame: masked with a fixed key (or not, to test the rule).
inline std::string client_frame(nbio::websocket::opcode op, std::string_view payload,
                                bool fin = true, bool mask = true) {
  std::array<char, nbio::websocket::max_header_size> head{};
  const std::uint32_t key = 0x5a3c9e01;
  const std::size_t n =
      nbio::websocket::encode_header(head, op, payload.size(), fin, false, mask ? &key : nullptr);
  std::string out(head.data(), n);
  std::string body(payload);
  if (mask) nbio::websocket::apply_mask(body, key, 0);
  return out + body;
}

// A server frame as it must arrive: unmasked.
inline std::string server_frame(nbio::websocket::opcode op, std::string_view payload) {
  std::array<char, nbio::websocket::max_header_size> head{};
  const std::size_t n =
      nbio::websocket::encode_header(head, op, payload.size(), true, false, nullptr);
  return std::string(head.data(), n) + std::string(payload);
}

}  // namespace nbio_test
