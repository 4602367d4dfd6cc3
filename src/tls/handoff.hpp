// Private. The hand-off of an established TLS 1.3 connection from OpenSSL to nbio's record
// layer (record.hpp): what OpenSSL must tell, and the one moment it is safe to take it.
//
// The traffic secrets come from OpenSSL's key-log callback (CLIENT_TRAFFIC_SECRET_0 and
// SERVER_TRAFFIC_SECRET_0, hex). The sequence numbers must be known exactly: a write sequence
// off by one reuses an AES-GCM nonce. The write side is known by construction rather than by
// counting the records OpenSSL wrote (its session tickets): just before the hand-off OpenSSL
// sends a KeyUpdate, so nbio writes under the next secret, HKDF-Expand-Label(secret, "traffic
// upd"), from sequence 0, which OpenSSL never used. The read side is the peer's first
// application secret at sequence 0, which holds only while OpenSSL has read no application
// record: hand_off refuses when it has (or holds bytes it has not returned).
#pragma once

#include <cstdint>
#include <string_view>

#include "tls/record.hpp"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace nbio::tls::detail {

// The application traffic secrets of one connection, as the key-log callback gives them.
struct handoff_secrets {
  std::uint8_t client[48] = {};
  std::uint8_t server[48] = {};
  std::uint8_t client_size = 0, server_size = 0;

  // Takes a key-log line; true if it was one of the two application secrets.
  bool take(std::string_view line) noexcept;
  bool complete() const noexcept { return client_size != 0 && client_size == server_size; }
  ~handoff_secrets();
};

// Has every SSL made from `ctx` collect its application secrets through the key-log callback,
// into an object the SSL owns (freed with it, or by drop_secrets).
void capture_secrets(SSL_CTX* ctx) noexcept;
// What the key log gave `ssl` so far; null when nothing (a context without capture_secrets).
const handoff_secrets* secrets_of(const SSL* ssl) noexcept;
// Frees them (a connection that stays with OpenSSL needs them no more).
void drop_secrets(SSL* ssl) noexcept;

// Why a connection stays with OpenSSL.
enum class handoff_refusal : std::uint8_t {
  none,
  not_tls13,          // TLS 1.2 and older keep OpenSSL's record layer
  unsupported_suite,  // a suite nbio's record layer lacks (the CCM ones)
  no_secrets,         // the key-log callback did not give both application secrets
  data_seen,          // OpenSSL already read application bytes or holds some unreturned
  key_update_failed,  // OpenSSL could not queue or write the KeyUpdate
  internal_error,
};
const char* describe(handoff_refusal r) noexcept;

// After the handshake of `ssl` (server or client): queues a KeyUpdate (not requesting the
// peer's) and has OpenSSL write it, then sets `tx` to seal under the next write secret from 0
// and `rx` to open under the peer's first secret from 0. The caller sends what OpenSSL wrote
// (the KeyUpdate record, after any tickets) before anything `tx` seals, then frees `ssl`.
// Call it before OpenSSL is asked for any application data; `tx` and `rx` mean something only
// when it returns none. On a refusal before the KeyUpdate
// nothing is changed and the connection goes on with OpenSSL; key_update_failed means the
// connection must close.
handoff_refusal hand_off(SSL* ssl, const handoff_secrets& secrets, record_direction& tx,
                         record_direction& rx) noexcept;

}  // namespace nbio::tls::detail
