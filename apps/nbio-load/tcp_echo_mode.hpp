// nbio-load. Mode `tcp-echo`: sends a payload of N bytes and expects the same N bytes back.
//
// The payload is a repeating 'a'..'z' pattern, so a reply is checked byte by byte against the
// request without storing what was sent: the parse state is the offset within the current reply.
#pragma once

#include <cstddef>
#include <string>

#include "load_mode.hpp"

namespace nbio_load {

class tcp_echo_mode final : public load_mode {
 public:
  explicit tcp_echo_mode(std::size_t payload_size);

  std::string_view name() const noexcept override { return "tcp-echo"; }
  bool sends() const noexcept override { return true; }
  std::string_view request() const noexcept override { return payload_; }
  reply_scan scan(std::uint64_t& state, std::string_view bytes) const noexcept override;

 private:
  std::string payload_;
};

}  // namespace nbio_load
