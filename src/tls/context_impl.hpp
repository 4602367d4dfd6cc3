// Private. What a tls::context holds: the OpenSSL contexts (swapped whole by reload), the
// client's session store, the counters.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "nbio/tls/context.hpp"
#include "tls/handshake_pool.hpp"

namespace nbio::tls {

struct context::impl {
  // One loaded configuration: the default SSL_CTX and one per extra SNI certificate.
  struct bundle {
    struct named {
      SSL_CTX* ctx;
      X509* leaf;  // owned by ctx
    };
    SSL_CTX* def = nullptr;
    std::vector<named> sni;
    std::vector<unsigned char> alpn;  // wire format (length-prefixed), server preference
    bundle() = default;
    bundle(const bundle&) = delete;
    bundle& operator=(const bundle&) = delete;
    ~bundle();
  };

  explicit impl(context& o) : owner(o) {}
  ~impl();

  // A new SSL for a connection; null and `ec` set when OpenSSL refuses. `remote` is the
  // dial's "host:port" (client).
  SSL* new_ssl(bool server, std::string_view remote, std::error_code& ec);
  // Client: remember the session the server just gave (new-session callback).
  void store_session(SSL* ssl, SSL_SESSION* session);

  context& owner;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::mutex mu;  // current and retired: one lock per new connection, none per I/O
  std::shared_ptr<bundle> current;
  // Configurations replaced by reload(): handshakes that began under one may still consult
  // it (its SNI list), so it lives as long as the context. Reloads are rare.
  std::vector<std::shared_ptr<bundle>> retired;

  client_options client;  // client contexts
  std::mutex sessions_mu;
  std::map<std::string, SSL_SESSION*, std::less<>> sessions;  // "host:port" -> last session

  std::atomic<std::uint64_t> handshakes{0}, resumed{0}, failed{0}, handed_off{0};
  // server_options::handshake_threads > 0. Last: its threads stop first.
  std::unique_ptr<detail::handshake_pool> pool;
};

// The impl of the context an SSL belongs to (every SSL_CTX we make points back to it).
context::impl* impl_of(const SSL* ssl) noexcept;

}  // namespace nbio::tls
