// Public. A transport: what runs between a connection's socket and its handler, turning the
// bytes on the wire into the bytes the handler reads and writes. TLS (nbio::tls::context) is
// the one there is; the engine knows it only through this base class, so the engine layer
// depends on nothing above it.
//
//   eng.listen("0.0.0.0:443", handler, {.tls = nbio::tls::context::server(cfg)});
//
// A listener or dialer given a transport runs every connection through it: the handshake
// first (the handler's on_open, and a dial's on_connect, run once it is done; a connection
// whose handshake fails or times out never reaches the handler, and a dial's on_error gets
// the cause), then conn::write() takes plaintext and on_data() gets plaintext, in every I/O
// mode, through conn::rebind() too. What a transport costs per connection: 16 bytes in the
// slot and its own per-connection state (an SSL object for TLS).
#pragma once

namespace nbio {

class transport {
 public:
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;
  virtual ~transport() = default;

 protected:
  transport() = default;
};

}  // namespace nbio
