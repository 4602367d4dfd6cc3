// Public. One WebSocket connection as its handler sees it: send, ping, close, its handler's
// per-connection state (conn_data). A connection is a small view made for each handler call, on the
// connection's thread (a loop, or the connection's own thread in blocking mode); other threads use
// send() with the connection's handle.
//
//   void on_message(nbio::websocket::connection& ws, std::string_view data, bool binary) {
//     ws.send(data, binary);   // echo
//   }
//
// Frames from a server are never masked, so a message is framed once and the same bytes can go
// to many connections (pub/sub). Writes go through the engine's write queue: a client that does
// not read is closed past conn_options::max_write_queue (endpoint_options::max_write_queue).
#pragma once

#include <cstdint>
#include <new>
#include <string_view>
#include <system_error>

#include "nbio/engine/conn.hpp"
#include "nbio/websocket/error.hpp"
#include "nbio/websocket/frame.hpp"
#include "nbio/websocket/handler.hpp"

namespace nbio::websocket {

class connection {
 public:
  explicit connection(nbio::conn& c) noexcept : c_(&c) {}

  // A whole message, text (UTF-8: the caller's promise) or binary. Errors as conn::write, plus
  // nbio::errc::not_connected once a close frame went out.
  std::error_code send(std::string_view data, bool binary = false);
  std::error_code send_text(std::string_view data) { return send(data, false); }
  std::error_code send_binary(std::string_view data) { return send(data, true); }
  // A ping (at most 125 bytes of payload); pongs answer pings by themselves.
  std::error_code ping(std::string_view payload = {});
  // Starts the closing handshake: sends a close frame with `code` and `reason` (cut to 123
  // bytes on a character boundary) and closes once the peer's close frame arrives, or after
  // endpoint_options::close_timeout. Messages received meanwhile are dropped. Idempotent.
  void close(close_code code = close_code::normal, std::string_view reason = {});

  // The handler's conn_data (handler.hpp): built in the connection's slot before on_open,
  // destroyed after on_close. T must be the handler's conn_data (debug builds check it).
  template <class T>
  T& data() noexcept {
#ifndef NDEBUG
    check_data_type(&nbio::detail::type_tag<T>::id);
#endif
    return *std::launder(
        reinterpret_cast<T*>(static_cast<char*>(c_->slot()) + detail::data_offset<T>));
  }
  // The negotiated subprotocol ("" when none).
  std::string_view subprotocol() const noexcept;
  // Whether permessage-deflate was negotiated (messages from `threshold` bytes up are sent
  // compressed; compressed messages arrive inflated).
  bool permessage_deflate() const noexcept;

  nbio::conn& raw() const noexcept {
    return *c_;
  }
  nbio::conn_handle handle() const noexcept {
    return c_->handle();
  }

 private:
  void check_data_type(const void* tag) const noexcept;

  nbio::conn* c_;
};

// Any thread: frames `data` as one server message and has the connection's thread write it
// (conn_handle::write: in order per sending thread). Errors: errc::not_connected when the
// connection is gone. Use it only with handles of WebSocket connections.
std::error_code send(nbio::conn_handle to, std::string_view data, bool binary = false);

// The bytes of one unmasked (server) frame: header and payload. For pub/sub: frame once, then
// conn::write / conn_handle::write the same bytes to every subscriber.
std::string frame_message(std::string_view data, bool binary);

}  // namespace nbio::websocket
