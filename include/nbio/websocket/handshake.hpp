// Public. The opening handshake (RFC 6455 4): checking a client's upgrade request, and the key
// arithmetic both sides need.
//
//   auto check = nbio::websocket::check_upgrade(request);
//   if (check.status != 0) { /* answer check.status (400, or 426 with
//                               Sec-WebSocket-Version: 13) with check.reason */ }
//   std::string accept = nbio::websocket::accept_key(check.key);
//
// Thread affinity: none.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/http/request.hpp"

namespace nbio::websocket {

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string accept_key(std::string_view client_key);

// A fresh Sec-WebSocket-Key: 16 random bytes, base64 (for a client).
std::string make_key();

struct upgrade_check {
  int status = 0;               // 0: a valid upgrade; else 400, or 426 (unsupported version)
  std::string_view reason;      // why not, for the answer's body
  std::string_view key;         // Sec-WebSocket-Key
  std::string_view protocols;   // Sec-WebSocket-Protocol as offered ("" when none)
  std::string_view extensions;  // Sec-WebSocket-Extensions as offered
};

// RFC 6455 4.2.1: GET, HTTP/1.1, "Upgrade: websocket" and "Connection: upgrade" (tokens,
// case-insensitive, among others), a Sec-WebSocket-Key of 16 bytes in base64, and
// Sec-WebSocket-Version 13. Views point into the request.
upgrade_check check_upgrade(const http::request& r) noexcept;

// Whether a comma-separated field value (Upgrade, Connection) holds `token`, case-insensitively.
bool has_token(std::string_view list, std::string_view token) noexcept;

// Every field named `name` (case-insensitive), in order, joined with ", ": one list, as RFC 7230
// 3.2.2 reads repeated fields (Sec-WebSocket-Extensions may come in several).
std::string joined_fields(std::span<const http::header> fields, std::string_view name);

// The elements of a comma-separated list ("chat, superchat"), trimmed, empty ones left out.
std::vector<std::string> split_list(std::string_view list);

// The first of `offered` (a Sec-WebSocket-Protocol list) that `supported` (comma-separated, the
// server's) names; "" when none.
std::string_view choose_protocol(std::string_view offered, std::string_view supported) noexcept;

}  // namespace nbio::websocket
