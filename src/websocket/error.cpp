// Private. The WebSocket layer's error_category and its close-code mapping.
#include "nbio/websocket/error.hpp"

namespace nbio::websocket {
namespace {

class websocket_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nbio.websocket"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_opcode:
        return "reserved opcode";
      case errc::reserved_bits:
        return "reserved bit set";
      case errc::unmasked_frame:
        return "client frame not masked";
      case errc::masked_frame:
        return "server frame masked";
      case errc::control_frame_too_long:
        return "control frame payload longer than 125 bytes";
      case errc::fragmented_control_frame:
        return "fragmented control frame";
      case errc::unexpected_continuation:
        return "continuation frame without a message to continue";
      case errc::message_in_progress:
        return "new data frame inside a fragmented message";
      case errc::bad_length:
        return "payload length with the most significant bit set";
      case errc::bad_close_payload:
        return "close frame with a 1-byte payload";
      case errc::invalid_close_code:
        return "invalid close code";
      case errc::invalid_utf8:
        return "text message is not valid UTF-8";
      case errc::invalid_close_reason:
        return "close reason is not valid UTF-8";
      case errc::bad_compressed_data:
        return "compressed message does not inflate";
      case errc::message_too_big:
        return "message too big";
      case errc::over_budget:
        return "server buffer budget spent";
      case errc::bad_url:
        return "not a ws:// URL (ws://host[:port][/path])";
      case errc::handshake_status:
        return "the server did not answer 101 Switching Protocols";
      case errc::handshake_fields:
        return "101 without Upgrade: websocket and Connection: upgrade";
      case errc::handshake_accept:
        return "Sec-WebSocket-Accept does not match the key";
      case errc::handshake_protocol:
        return "the server chose a subprotocol that was not offered";
      case errc::handshake_extension:
        return "the server chose an extension, or extension parameters, not offered";
      case errc::handshake_timeout:
        return "the opening handshake timed out";
    }
    return "unknown nbio.websocket error";
  }
};

}  // namespace

const std::error_category& websocket_category() noexcept {
  static const websocket_category_impl instance;
  return instance;
}

close_code close_code_of(std::error_code ec) noexcept {
  if (ec.category() != websocket_category()) return close_code::internal_error;
  switch (static_cast<errc>(ec.value())) {
    case errc::invalid_utf8:
    case errc::invalid_close_reason:
    case errc::bad_compressed_data:
      return close_code::invalid_payload;
    case errc::message_too_big:
      return close_code::message_too_big;
    case errc::over_budget:
      return close_code::policy_violation;
    default:
      return close_code::protocol_error;
  }
}

bool valid_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;  // registered (3xxx) and private use (4xxx)
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}

}  // namespace nbio::websocket
