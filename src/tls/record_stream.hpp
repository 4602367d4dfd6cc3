// Private. The data path of a connection handed off to nbio's record layer (connection.hpp):
// reading records (whole ones opened in place in the engine's read buffer, a split one kept
// only until it is complete), alerts, post-handshake messages, sealing what the handler
// writes, close_notify; and the sweep that releases the cipher contexts of idle connections.
//
// Post-handshake messages, as a server: a KeyUpdate renews the peer's key, and one with
// update_requested has ours renewed before our next data record (RFC 8446 §4.6.3; many
// requests before it cost one). Anything else (a NewSessionTicket, a Certificate: nbio never
// asks for post-handshake authentication) is an unexpected_message. Every error sends its
// alert (best effort) and closes the connection; nothing of a record that fails is delivered.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "nbio/engine/conn.hpp"
#include "tls/connection.hpp"

namespace nbio::tls::detail::record_stream {

// Ciphertext from the socket: records opened and their plaintext delivered. Returns how many
// bytes it consumed (all unless the connection stopped reading).
std::size_t input(conn& c, connection& t, std::span<char> bytes);
// Plaintext from the handler, sealed and written.
std::error_code write(conn& c, connection& t, std::string_view plain);
// Our close_notify, through the write path, or when `best_effort` straight to the socket if
// nothing is queued before it.
void close_notify(conn& c, connection& t, bool best_effort);
// The connection is going away: off this thread's list.
void forget(connection& t) noexcept;
// The transport's sweep hook: releases the contexts of this thread's connections that did not
// use them since the last sweep. True while some connection still holds them.
bool sweep() noexcept;

// Records sealed under one key before we renew it with a KeyUpdate of our own: 2^24, under
// AES-GCM's limit of 2^24.5 full records per key (RFC 8446 §5.5). Tests lower it.
inline std::uint64_t records_per_key = std::uint64_t{1} << 24;
// Records in a row without application data (KeyUpdates, empty records) before the
// connection is closed: a flood costs bounded work (BoringSSL's bound for KeyUpdates).
inline constexpr std::uint8_t max_quiet_records = 32;
// Connections whose contexts a sweep released, since the start (for tests).
inline std::atomic<std::uint64_t> released{0};

}  // namespace nbio::tls::detail::record_stream
