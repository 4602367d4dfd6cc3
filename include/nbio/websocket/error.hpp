// Public. The WebSocket layer's error model: the close codes of RFC 6455 7.4, one enum of
// protocol failures registered as a std::error_category, and the close code each failure is
// answered with.
//
// The frame parser reports every protocol violation as an nbio::websocket::errc; the connection
// then fails the WebSocket connection (RFC 6455 7.1.7): it sends a close frame carrying
// close_code_of(e) and closes TCP. Thread affinity: none (pure functions and constants).
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

namespace nbio::websocket {

// Close status codes (RFC 6455 7.4.1 and the IANA "WebSocket Close Code Number" registry).
enum class close_code : std::uint16_t {
  normal = 1000,               // the purpose of the connection was fulfilled
  going_away = 1001,           // server shutting down, browser leaving the page
  protocol_error = 1002,       // a frame broke RFC 6455
  unsupported_data = 1003,     // a data type the endpoint cannot accept (binary to a text-only)
  no_status = 1005,            // local only: the close frame carried no code; never sent
  abnormal = 1006,             // local only: closed without a close frame; never sent
  invalid_payload = 1007,      // data inconsistent with its type (text that is not UTF-8)
  policy_violation = 1008,     // a generic policy refusal
  message_too_big = 1009,      // a message larger than the endpoint accepts
  mandatory_extension = 1010,  // client: the server did not negotiate a required extension
  internal_error = 1011,       // server: an unexpected condition
  service_restart = 1012,      // IANA: the service is restarting
  try_again_later = 1013,      // IANA: temporary overload
  bad_gateway = 1014,          // IANA: a gateway got an invalid response upstream
  tls_handshake = 1015,        // local only: the TLS handshake failed; never sent
};

// Protocol failures found in received frames. Each fails the connection with close_code_of(e).
enum class errc {
  // 1002 Protocol error.
  bad_opcode = 1,            // a reserved opcode (3-7, 11-15)
  reserved_bits,             // RSV2/RSV3 set, or RSV1 without permessage-deflate, on a control
                             // frame or on a continuation
  unmasked_frame,            // a server received a frame from the client without a mask
  masked_frame,              // a client received a masked frame from the server
  control_frame_too_long,    // a close, ping or pong with more than 125 payload bytes
  fragmented_control_frame,  // a close, ping or pong with FIN clear
  unexpected_continuation,   // a continuation frame with no fragmented message started
  message_in_progress,       // a text or binary frame while a fragmented message is open
  bad_length,                // a 64-bit payload length with its most significant bit set
  bad_close_payload,         // a close frame with a 1-byte payload
  invalid_close_code,        // a close code that may not appear on the wire (valid_close_code)
  // 1007 Invalid frame payload data.
  invalid_utf8,          // a text message that is not UTF-8 (found at the first bad byte)
  invalid_close_reason,  // a close reason that is not UTF-8
  bad_compressed_data,   // permessage-deflate: a compressed message that does not inflate
  // 1009 Message too big.
  message_too_big,  // a message (all its fragments) longer than frame_limits::max_message
  // 1008 Policy violation.
  over_budget,  // the server's buffer budget ran out while this connection held among the most
  // The client's opening handshake (no close frame: the connection was never a WebSocket).
  bad_url,              // not ws://host[:port][/path] (wss:// waits for TLS)
  handshake_status,     // the server answered something other than 101
  handshake_fields,     // 101 without Upgrade: websocket and Connection: upgrade
  handshake_accept,     // a Sec-WebSocket-Accept that does not match our key
  handshake_protocol,   // a subprotocol we did not offer
  handshake_extension,  // an extension we did not offer, or parameters we cannot accept
  handshake_timeout,    // no complete answer within endpoint_options::handshake_timeout
};

const std::error_category& websocket_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), websocket_category()};
}

// The code to close with after error `ec`: 1007 for invalid UTF-8 or compressed data, 1009 for a
// message too big, 1008 for an eviction under the buffer budget, 1002 for any other websocket errc;
// 1011 (internal error) for an error of another category.
close_code close_code_of(std::error_code ec) noexcept;

// Whether `code` may be carried by a close frame on the wire (RFC 6455 7.4.1, 7.4.2 and the
// IANA registry): 1000-1003, 1007-1014 and 3000-4999. Invalid: 0-999, 1004 (reserved), 1005,
// 1006 and 1015 (local only), 1016-2999 (unassigned), 5000 and above. A close frame received
// with an invalid code fails the connection with 1002 (Autobahn 7.9.x; 7.13.x accepts that too).
bool valid_close_code(std::uint16_t code) noexcept;

}  // namespace nbio::websocket

template <>
struct std::is_error_code_enum<nbio::websocket::errc> : std::true_type {};
