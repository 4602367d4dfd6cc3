// nbio-load. Modes `ws-echo` and `ws-idle`: WebSocket connections (RFC 6455).
//
// On open a connection sends the upgrade request (the greeting) and, in ws-echo, its messages
// right behind it: one masked binary frame of --size bytes each, the 'a'..'z' pattern of
// tcp-echo. The 101 response is checked (status line and end of head), then every echo must be
// the server's unmasked frame of the same payload, compared byte by byte without storing it;
// ws-idle expects nothing after the 101. The parse state fits the 8-byte mode_state:
//
//   bit  0     phase: the handshake response, or frames
//   head:  bits 1-2 how much of "\r\n\r\n" matched, bits 3-7 position in "HTTP/1.1 101"
//   frames: bits 1-63 the offset within the current echo frame
#pragma once

#include <cstddef>
#include <string>

#include "load_mode.hpp"

namespace nbio_load {

class ws_mode final : public load_mode {
 public:
  // `host` for the Host field, `path` the upgrade's target, `echo`: ws-echo (else ws-idle).
  ws_mode(const std::string& host, const std::string& path, std::size_t payload_size, bool echo);

  std::string_view name() const noexcept override { return echo_ ? "ws-echo" : "ws-idle"; }
  bool sends() const noexcept override { return echo_; }
  std::string_view greeting() const noexcept override { return upgrade_; }
  std::string_view request() const noexcept override { return frame_; }
  reply_scan scan(std::uint64_t& state, std::string_view bytes) const noexcept override;

 private:
  std::string upgrade_;     // the upgrade request
  std::string frame_;       // one masked client frame
  std::string echo_frame_;  // the server's frame that must come back
  bool echo_;
};

}  // namespace nbio_load
