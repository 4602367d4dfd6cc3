// Public. TLS for the engine's connections, on OpenSSL 3: one context per listener or dialer.
//
//   auto tls = nbio::tls::context::server({.cert = {"server.pem", "server.key"}});
//   eng.listen("0.0.0.0:443", handler, {.tls = tls});          // HTTPS, WSS, any TCP protocol
//   auto cli = nbio::tls::context::client({.ca_file = "ca.pem"});
//   eng.make_dialer(handler, {.tls = cli});
//
// Handlers do not change: on_open runs once the handshake is done, on_data gets plaintext,
// conn::write takes plaintext, close() sends close_notify, in every I/O mode. A failed or
// timed-out handshake never reaches the handler; its cause (nbio/tls/error.hpp, with OpenSSL's
// reason text) goes to the dial's on_error on the client side and to the context's stats on
// the server side.
//
// Memory: a TLS connection costs its slot 16 bytes. OpenSSL runs every handshake; once a TLS
// 1.3 server connection is established it leaves OpenSSL for nbio's own record layer
// (server_options::handoff), and an idle one then holds 216 bytes: its traffic secrets and
// sequence numbers, no cipher context and no buffer. TLS 1.2 and client connections stay with
// OpenSSL, which keeps ~13.7 KB per connection (its SSL object alone is 7.6 KB); their buffers
// are released whenever empty. docs/tls.md has the measurements and the hand-off's safety
// argument.
//
// Setup functions throw std::system_error with OpenSSL's reason on a bad file or setting.
// Everything else is thread-safe: contexts are shared by all loops.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/engine/conn.hpp"
#include "nbio/engine/transport.hpp"
#include "nbio/tls/error.hpp"

namespace nbio::tls {

using namespace std::chrono_literals;

enum class version : std::uint8_t { tls1_2, tls1_3 };

// A certificate chain (leaf first) and its private key, PEM files.
struct certificate {
  std::string chain_file{};
  std::string key_file{};
};

enum class client_auth : std::uint8_t {
  none,      // no client certificate asked for (default)
  optional,  // asked for, verified when sent
  required,  // the handshake fails without a valid one (mutual TLS)
};

struct server_options {
  certificate cert{};  // served when the client sends no SNI or none of `sni` matches
  // More certificates, chosen by the client's SNI against each one's names (subjectAltName DNS
  // entries, wildcards included, as X509_check_host matches them), first match wins.
  std::vector<certificate> sni{};
  // ALPN, in the server's order of preference; empty: no ALPN. A client that offers only
  // protocols not listed gets the no_application_protocol alert (RFC 7301 3.2).
  std::vector<std::string> alpn = {"http/1.1"};
  version min_version = version::tls1_2;
  version max_version = version::tls1_3;
  // TLS 1.2 cipher list (OpenSSL syntax); empty: ECDHE key exchange with AEAD ciphers only
  // (Mozilla's "intermediate" set without DHE). TLS 1.3 suites: empty keeps OpenSSL's.
  std::string ciphers{};
  std::string ciphersuites{};
  // Key-exchange groups ("X25519:P-256"); empty keeps OpenSSL's.
  std::string groups{};
  // Resumption. Tickets are stateless (the server keeps nothing per session); the cache keeps
  // TLS 1.2 sessions by id for clients without tickets. Sessions live `session_timeout`.
  bool session_tickets = true;
  unsigned tls13_tickets = 1;              // NewSessionTicket messages per TLS 1.3 handshake
  std::size_t session_cache_size = 20480;  // 0: no cache
  std::chrono::seconds session_timeout = 300s;
  // Client certificates (mutual TLS), verified against `client_ca_file`.
  client_auth verify_client = client_auth::none;
  std::string client_ca_file{};
  int verify_depth = 9;
  // A connection whose handshake is not done by then closes with errc::handshake_timeout.
  std::chrono::milliseconds handshake_timeout = 10s;
  // Threads that run the expensive step of each handshake (the ClientHello: key exchange and
  // the certificate's signature) off the loops, so a storm of new connections does not delay
  // established ones. 0: on the loop, under engine_options::handshakes_per_turn. Non-blocking
  // mode only (a blocking-mode connection has its own thread already).
  unsigned handshake_threads = 0;
  // TLS 1.3 connections leave OpenSSL after the handshake for nbio's record layer: ~200 bytes
  // per idle connection instead of ~13.7 KB, and no OpenSSL call per read or write. false
  // keeps every connection on OpenSSL. (TLS 1.2 and the CCM suites always stay.)
  bool handoff = true;
};

struct client_options {
  // Peer verification: against `ca_file` (PEM), or the system store when empty. Host-name
  // checking is on with it: the name dialed (or `server_name`) must match the certificate
  // (an IP address dialed must be in its IP subjectAltNames).
  bool verify = true;
  std::string ca_file{};
  // The name for SNI and the host-name check; empty: the host of dial()'s `remote` (no SNI
  // for an IP address).
  std::string server_name{};
  std::vector<std::string> alpn{};  // offered protocols; empty: no ALPN
  version min_version = version::tls1_2;
  version max_version = version::tls1_3;
  std::string ciphers{};
  std::string ciphersuites{};
  std::string groups{};
  certificate cert{};  // a client certificate for mutual TLS (optional)
  // Resumes sessions across the connections of this context: the last session each server
  // ("host:port") gave is offered by the next connection to it.
  bool session_reuse = true;
  std::chrono::milliseconds handshake_timeout = 10s;
};

struct context_stats {
  std::uint64_t handshakes = 0;  // finished
  std::uint64_t resumed = 0;     // of which resumed a session
  // Connections closed before their handshake finished: an error, a timeout, the peer leaving
  // (the cause is in the connection's close path).
  std::uint64_t failed = 0;
  // Of the finished ones, connections that left OpenSSL for nbio's record layer
  // (server_options::handoff).
  std::uint64_t handed_off = 0;
};

class context final : public nbio::transport {
 public:
  static std::shared_ptr<context> server(const server_options& config);
  static std::shared_ptr<context> client(const client_options& config = {});
  ~context() override;

  // Any thread, while serving: the certificates, keys and settings of `config` apply to
  // handshakes that start from now on; live connections keep theirs. Session tickets issued
  // before stay valid (the ticket keys carry over). Throws, keeping the old settings, when
  // `config` does not load. Server contexts only.
  void reload(const server_options& config);

  bool is_server() const noexcept { return server_; }
  context_stats stats() const noexcept;

  struct impl;  // src/tls/context_impl.hpp
  impl* impl_ptr() const noexcept { return impl_.get(); }

 private:
  explicit context(bool server);

  const bool server_;
  std::unique_ptr<impl> impl_;
  friend struct impl;
};

// About a TLS connection, on its own thread, once on_open ran; empty or false for a plain one.
std::string_view alpn(const conn& c);              // the negotiated protocol
std::string_view server_name(const conn& c);       // the SNI the client sent (server side)
std::string_view protocol_version(const conn& c);  // "TLSv1.3"
std::string_view cipher(const conn& c);            // "TLS_AES_128_GCM_SHA256"
bool resumed(const conn& c);                       // the handshake resumed a session
bool handed_off(const conn& c);  // on nbio's record layer since its handshake (server_options)
bool has_peer_certificate(const conn& c);
std::string peer_subject(const conn& c);  // the verified peer certificate's subject, one line

}  // namespace nbio::tls
