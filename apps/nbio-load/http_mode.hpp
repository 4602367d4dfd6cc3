// nbio-load. Mode `http`: keep-alive GET requests, optionally pipelined.
//
// A message is a batch of --pipeline requests written at once (wrk's pipeline script does the
// same); its reply is complete when that many responses have come back. Responses are checked
// as they stream in, without buffering them: the status must be 2xx and the body is delimited by
// Content-Length (a chunked or close-delimited response is an error: the servers this mode
// measures answer GET with a length).
//
// Mode `tls-handshake` is this mode with one request per connection, sent with
// "Connection: close": load_client closes the connection at the response and dials again. The whole
// parse state fits the 8-byte mode_state:
//
//   bits 0-1   phase: head or body
//   bits 2-3   how much of "\r\n\r\n" the head has matched
//   bits 4-8   position in the current line: matching "content-length:" or the status line
//   bit  9     in the status line
//   bits 10-19 responses completed in the current batch
//   bit  20    the head had a Content-Length
//   bits 21-63 the Content-Length (head) or the body bytes left (body)
#pragma once

#include <cstdint>
#include <string>

#include "load_mode.hpp"

namespace nbio_load {

class http_mode final : public load_mode {
 public:
  // `host` for the Host field, `path` the target, `pipeline` requests per message (1-1023);
  // `connection_close`: the request asks for "Connection: close" (mode tls-handshake).
  http_mode(const std::string& host, const std::string& path, unsigned pipeline,
            bool connection_close = false);

  std::string_view name() const noexcept override {
    return connection_close_ ? "tls-handshake" : "http";
  }
  bool sends() const noexcept override { return true; }
  std::string_view request() const noexcept override { return requests_; }
  reply_scan scan(std::uint64_t& state, std::string_view bytes) const noexcept override;

 private:
  std::string requests_;  // `pipeline` copies of one GET
  unsigned pipeline_;
  bool connection_close_;
};

}  // namespace nbio_load
