// Private. The hand-off from OpenSSL to nbio's record layer (handoff.hpp says when and why).
#include "tls/handoff.hpp"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <cstring>
#include <new>

namespace nbio::tls::detail {

namespace {

int nibble(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex into out (at most 48 bytes); the byte count, or 0 when it is not hex of a secret's size.
std::uint8_t unhex(std::string_view hex, std::uint8_t* out) noexcept {
  if (hex.size() != 64 && hex.size() != 96) return 0;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i / 2] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return static_cast<std::uint8_t>(hex.size() / 2);
}

void free_secrets(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<handoff_secrets*>(ptr);
}

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_secrets);
  return index;
}

// OpenSSL calls it with each secret of the handshake as it derives it (five for a TLS 1.3
// server), on the thread running the handshake step.
void key_log(const SSL* ssl, const char* line) {
  auto* s = static_cast<handoff_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (!s) {
    s = new (std::nothrow) handoff_secrets;
    if (!s) return;  // no hand-off for this connection (no_secrets): it stays with OpenSSL
    if (SSL_set_ex_data(const_cast<SSL*>(ssl), secrets_index(), s) != 1) {
      delete s;
      return;
    }
  }
  s->take(line);
}

}  // namespace

void capture_secrets(SSL_CTX* ctx) noexcept {
  secrets_index();  // registered before any SSL of the context exists
  SSL_CTX_set_keylog_callback(ctx, key_log);
}

const handoff_secrets* secrets_of(const SSL* ssl) noexcept {
  return static_cast<const handoff_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
}

void drop_secrets(SSL* ssl) noexcept {
  delete static_cast<handoff_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  SSL_set_ex_data(ssl, secrets_index(), nullptr);
}

bool handoff_secrets::take(std::string_view line) noexcept {
  // "<LABEL> <client random> <secret>" (NSS key log format).
  const std::size_t a = line.find(' ');
  const std::size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  const std::string_view label = line.substr(0, a), secret = line.substr(b + 1);
  if (label == "CLIENT_TRAFFIC_SECRET_0") return (client_size = unhex(secret, client)) != 0;
  if (label == "SERVER_TRAFFIC_SECRET_0") return (server_size = unhex(secret, server)) != 0;
  return false;
}

handoff_secrets::~handoff_secrets() {
  OPENSSL_cleanse(client, sizeof client);
  OPENSSL_cleanse(server, sizeof server);
}

const char* describe(handoff_refusal r) noexcept {
  switch (r) {
    case handoff_refusal::none:
      return "handed off";
    case handoff_refusal::not_tls13:
      return "not TLS 1.3";
    case handoff_refusal::unsupported_suite:
      return "cipher suite not in nbio's record layer";
    case handoff_refusal::no_secrets:
      return "the key log gave no application secrets";
    case handoff_refusal::data_seen:
      return "OpenSSL already holds application data";
    case handoff_refusal::key_update_failed:
      return "OpenSSL could not send the KeyUpdate";
    case handoff_refusal::internal_error:
      return "record layer setup failed";
  }
  return "record layer setup failed";
}

handoff_refusal hand_off(SSL* ssl, const handoff_secrets& secrets, record_direction& tx,
                         record_direction& rx) noexcept {
  if (SSL_version(ssl) != TLS1_3_VERSION || !SSL_is_init_finished(ssl))
    return handoff_refusal::not_tls13;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  const std::uint16_t id = cipher ? SSL_CIPHER_get_protocol_id(cipher) : 0;
  if (!supported(id)) return handoff_refusal::unsupported_suite;
  const suite s = static_cast<suite>(id);
  if (!secrets.complete() || secrets.client_size != hash_size(s))
    return handoff_refusal::no_secrets;
  if (SSL_pending(ssl) > 0 || SSL_has_pending(ssl)) return handoff_refusal::data_seen;
  const bool server = SSL_is_server(ssl) == 1;
  const std::uint8_t* mine = server ? secrets.server : secrets.client;
  const std::uint8_t* peers = server ? secrets.client : secrets.server;
  const std::size_t size = secrets.client_size;  // both sides' (complete() checked)
  // What can fail without touching the connection, first: the record layer's own setup.
  if (!tx.init(record_direction::seals, s, {mine, size}) || !tx.update() ||
      !rx.init(record_direction::opens, s, {peers, size}))
    return handoff_refusal::internal_error;
  if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1)
    return handoff_refusal::key_update_failed;
  return handoff_refusal::none;
}

}  // namespace nbio::tls::detail
