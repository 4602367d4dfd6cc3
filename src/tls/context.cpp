// Private. tls::context: building OpenSSL contexts from a config (certificates, SNI, ALPN,
// versions, ciphers, resumption, client verification), reloading them, the client's sessions.
#include "nbio/tls/context.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

#include "nbio/core/address.hpp"
#include "tls/connection.hpp"
#include "tls/context_impl.hpp"
#include "tls/handoff.hpp"
#include "tls/ssl_error.hpp"
#include "tls/stream.hpp"

namespace nbio::tls {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(make_error_code(errc::library_error),
                          "tls: " + what + ": " + detail::error_text());
}

int proto(version v) {
  return v == version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// Mozilla's "intermediate" TLS 1.2 list without DHE: forward secrecy and AEAD only.
constexpr const char* default_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::vector<unsigned char> alpn_wire(const std::vector<std::string>& protos) {
  std::vector<unsigned char> wire;
  for (const std::string& p : protos) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("tls: an ALPN protocol name is 1 to 255 bytes");
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  return wire;
}

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Settings both sides share.
void common_setup(SSL_CTX* ctx, version min, version max, const std::string& ciphers,
                  const std::string& suites, const std::string& groups) {
  SSL_CTX_set_min_proto_version(ctx, proto(min));
  SSL_CTX_set_max_proto_version(ctx, proto(max));
  // Renegotiation is refused (a client could make the server redo the expensive half of a
  // handshake at will); compression is off (CRIME).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Buffers go back whenever they are empty: an idle connection holds none.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // AUTO_RETRY (OpenSSL's default) lets SSL_read go past a non-application record (a TLS 1.3
  // NewSessionTicket) to the data after it instead of returning WANT_READ with bytes left.
  SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
  if (!SSL_CTX_set_cipher_list(ctx, ciphers.empty() ? default_ciphers : ciphers.c_str()))
    fail("cipher list '" + ciphers + "'");
  if (!suites.empty() && !SSL_CTX_set_ciphersuites(ctx, suites.c_str()))
    fail("TLS 1.3 cipher suites '" + suites + "'");
  if (!groups.empty() && !SSL_CTX_set1_groups_list(ctx, groups.c_str()))
    fail("groups '" + groups + "'");
}

void use_certificate(SSL_CTX* ctx, const certificate& cert) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.chain_file.c_str()) != 1)
    fail("certificate chain '" + cert.chain_file + "'");
  if (SSL_CTX_use_PrivateKey_file(ctx, cert.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("private key '" + cert.key_file + "'");
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail("private key '" + cert.key_file + "' does not match '" + cert.chain_file + "'");
}

// ALPN, server side: the first of the server's protocols the client offers.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void* arg) {
  const auto& prefs = static_cast<context::impl::bundle*>(arg)->alpn;
  for (std::size_t i = 0; i < prefs.size(); i += 1u + prefs[i]) {
    for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
      if (j + 1u + in[j] > inlen) break;  // a malformed list: OpenSSL checks it, but be safe
      if (in[j] == prefs[i] && std::memcmp(in + j + 1, prefs.data() + i + 1, in[j]) == 0) {
        *out = in + j + 1;
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol (RFC 7301 3.2)
}

// SNI: the first extra certificate whose names match the requested host.
int select_certificate(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  for (const auto& n : static_cast<context::impl::bundle*>(arg)->sni) {
    if (X509_check_host(n.leaf, name, 0, 0, nullptr) == 1) {
      SSL_set_SSL_CTX(ssl, n.ctx);
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

int new_session(SSL* ssl, SSL_SESSION* session) {
  context::impl* im = impl_of(ssl);
  if (!im) return 0;
  im->store_session(ssl, session);
  return 1;  // we keep the reference
}

SSL_CTX* make_server_ctx(const server_options& cfg, const certificate& cert, context::impl& owner,
                         context::impl::bundle& b) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) fail("SSL_CTX_new");
  SSL_CTX_set_ex_data(ctx, ex_index(), &owner);
  try {
    common_setup(ctx, cfg.min_version, cfg.max_version, cfg.ciphers, cfg.ciphersuites, cfg.groups);
    use_certificate(ctx, cert);
    if (!cfg.session_tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, cfg.session_tickets ? cfg.tls13_tickets : 0);
    SSL_CTX_set_session_cache_mode(
        ctx, cfg.session_cache_size ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
    if (cfg.session_cache_size)
      SSL_CTX_sess_set_cache_size(ctx, static_cast<long>(cfg.session_cache_size));
    SSL_CTX_set_timeout(ctx, static_cast<long>(cfg.session_timeout.count()));
    static const unsigned char sid_ctx[] = "nbio";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (cfg.verify_client != client_auth::none) {
      if (cfg.client_ca_file.empty())
        throw std::invalid_argument("tls: verify_client needs client_ca_file");
      if (SSL_CTX_load_verify_locations(ctx, cfg.client_ca_file.c_str(), nullptr) != 1)
        fail("client CA file '" + cfg.client_ca_file + "'");
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca_file.c_str()))
        SSL_CTX_set_client_CA_list(ctx, names);
      int mode = SSL_VERIFY_PEER;
      if (cfg.verify_client == client_auth::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(ctx, mode, nullptr);
      SSL_CTX_set_verify_depth(ctx, cfg.verify_depth);
    }
    if (!b.alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, select_alpn, &b);
    if (cfg.handoff && cfg.max_version == version::tls1_3) detail::capture_secrets(ctx);
  } catch (...) {
    SSL_CTX_free(ctx);
    throw;
  }
  return ctx;
}

std::shared_ptr<context::impl::bundle> load_server(const server_options& cfg,
                                                   context::impl& owner) {
  auto b = std::make_shared<context::impl::bundle>();
  b->alpn = alpn_wire(cfg.alpn);
  for (const std::string& p : cfg.alpn)  // what a handed-off connection's tls::alpn points at
    detail::intern(detail::name_table::protocols, p);
  b->def = make_server_ctx(cfg, cfg.cert, owner, *b);
  for (const certificate& c : cfg.sni) {
    SSL_CTX* ctx = make_server_ctx(cfg, c, owner, *b);
    b->sni.push_back({ctx, SSL_CTX_get0_certificate(ctx)});
  }
  if (!b->sni.empty()) {
    SSL_CTX_set_tlsext_servername_callback(b->def, select_certificate);
    SSL_CTX_set_tlsext_servername_arg(b->def, b.get());
  }
  return b;
}

std::shared_ptr<context::impl::bundle> load_client(const client_options& cfg,
                                                   context::impl& owner) {
  auto b = std::make_shared<context::impl::bundle>();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) fail("SSL_CTX_new");
  b->def = ctx;
  SSL_CTX_set_ex_data(ctx, ex_index(), &owner);
  common_setup(ctx, cfg.min_version, cfg.max_version, cfg.ciphers, cfg.ciphersuites, cfg.groups);
  if (cfg.verify) {
    if (!cfg.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1)
        fail("CA file '" + cfg.ca_file + "'");
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      fail("the system's CA store");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!cfg.cert.chain_file.empty()) use_certificate(ctx, cfg.cert);
  b->alpn = alpn_wire(cfg.alpn);
  if (!b->alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx, b->alpn.data(), static_cast<unsigned>(b->alpn.size())) != 0)
    fail("ALPN protocols");
  if (cfg.session_reuse) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
  }
  return b;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

context::impl* impl_of(const SSL* ssl) noexcept {
  return static_cast<context::impl*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
}

context::impl::bundle::~bundle() {
  for (auto& n : sni)
    SSL_CTX_free(n.ctx);
  SSL_CTX_free(def);
}

context::impl::~impl() {
  for (auto& [key, session] : sessions)
    if (session) SSL_SESSION_free(session);
}

SSL* context::impl::new_ssl(bool server, std::string_view remote, std::error_code& ec) {
  SSL* ssl;
  {
    std::lock_guard lock(mu);
    ssl = SSL_new(current->def);
  }
  if (!ssl) {
    ec = detail::take_error(nullptr);
    return nullptr;
  }
  if (server) {
    SSL_set_accept_state(ssl);
    return ssl;
  }
  SSL_set_connect_state(ssl);
  std::string host = client.server_name;
  if (host.empty()) {
    std::uint16_t port = 0;
    if (!address::split_host_port(remote, host, port)) host.clear();
  }
  bool ok = true;
  if (!host.empty()) {
    if (is_ip_literal(host)) {
      if (client.verify) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
    } else {
      ok = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
      if (ok && client.verify) ok = SSL_set1_host(ssl, host.c_str()) == 1;
    }
  } else if (client.verify) {
    ok = false;  // nothing to check the certificate against: refuse rather than accept any
    ERR_raise(ERR_LIB_SSL, SSL_R_BAD_VALUE);
  }
  if (ok && client.session_reuse) {
    std::lock_guard lock(sessions_mu);
    auto it = sessions.find(remote);
    if (it == sessions.end()) it = sessions.emplace(std::string(remote), nullptr).first;
    SSL_set_app_data(ssl, const_cast<std::string*>(&it->first));
    if (it->second) SSL_set_session(ssl, it->second);
  }
  if (!ok) {
    ec = detail::take_error(ssl);
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

void context::impl::store_session(SSL* ssl, SSL_SESSION* session) {
  auto* key = static_cast<std::string*>(SSL_get_app_data(ssl));
  if (!key) {
    SSL_SESSION_free(session);
    return;
  }
  std::lock_guard lock(sessions_mu);
  SSL_SESSION*& slot = sessions.find(*key)->second;
  if (slot) SSL_SESSION_free(slot);
  slot = session;
}

context::context(bool server) : server_(server), impl_(std::make_unique<impl>(*this)) {
  stream::register_transport();
}

context::~context() = default;

std::shared_ptr<context> context::server(const server_options& config) {
  std::shared_ptr<context> c(new context(true));
  c->impl_->current = load_server(config, *c->impl_);
  c->impl_->handshake_timeout = config.handshake_timeout;
  if (config.handshake_threads > 0)
    c->impl_->pool = std::make_unique<detail::handshake_pool>(config.handshake_threads);
  return c;
}

std::shared_ptr<context> context::client(const client_options& config) {
  std::shared_ptr<context> c(new context(false));
  c->impl_->client = config;
  c->impl_->current = load_client(config, *c->impl_);
  c->impl_->handshake_timeout = config.handshake_timeout;
  return c;
}

void context::reload(const server_options& config) {
  if (!server_) throw std::logic_error("tls: reload() is for server contexts");
  auto next = load_server(config, *impl_);
  std::lock_guard lock(impl_->mu);
  // Tickets issued under the old keys keep resuming: the keys carry over.
  unsigned char keys[80];
  if (SSL_CTX_get_tlsext_ticket_keys(impl_->current->def, keys, sizeof keys) == 1)
    SSL_CTX_set_tlsext_ticket_keys(next->def, keys, sizeof keys);
  impl_->retired.push_back(std::move(impl_->current));
  impl_->current = std::move(next);
}

context_stats context::stats() const noexcept {
  return {impl_->handshakes.load(std::memory_order_relaxed),
          impl_->resumed.load(std::memory_order_relaxed),
          impl_->failed.load(std::memory_order_relaxed),
          impl_->handed_off.load(std::memory_order_relaxed)};
}

}  // namespace nbio::tls
