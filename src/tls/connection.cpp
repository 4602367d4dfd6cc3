// Private. A TLS connection's own object (connection.hpp): leaving OpenSSL, freeing.
#include "tls/connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>

namespace nbio::tls::detail {

static_assert(sizeof(connection) <= 216, "a handed-off connection stays within 216 bytes");

namespace {

// The pool behind connection's operator new.
class pool {
 public:
  static constexpr std::size_t chunk_size = 256u << 10;

  void* take() noexcept {
    std::lock_guard lock(mu_);
    if (!free_ && !grow()) return nullptr;
    free_node* n = free_;
    free_ = n->next;
    return n;
  }
  void give(void* p) noexcept {
    std::lock_guard lock(mu_);
    auto* n = static_cast<free_node*>(p);
    n->next = free_;
    free_ = n;
  }

 private:
  struct free_node {
    free_node* next;
  };
  bool grow() noexcept {
    void* chunk =
        ::mmap(nullptr, chunk_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chunk == MAP_FAILED) return false;
    // Pushed in reverse so that the chunk is used from its start (pages touched in order).
    auto* base = static_cast<char*>(chunk);
    for (std::size_t i = chunk_size / sizeof(connection); i-- > 0;) {
      auto* n = reinterpret_cast<free_node*>(base + i * sizeof(connection));
      n->next = free_;
      free_ = n;
    }
    return true;
  }

  std::mutex mu_;
  free_node* free_ = nullptr;
};

pool& the_pool() {
  static pool* p = new pool;  // never destroyed: connections may outlive static destructors
  return *p;
}

}  // namespace

void* connection::operator new(std::size_t size) {
  if (void* p = operator new(size, std::nothrow)) return p;
  throw std::bad_alloc();
}

void* connection::operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (size != sizeof(connection)) return ::operator new(size, std::nothrow);
  return the_pool().take();
}

void connection::operator delete(void* p) noexcept {
  if (p) the_pool().give(p);
}

const char* intern(name_table table, std::string_view name) noexcept {
  static std::mutex mu;
  static std::set<std::string, std::less<>> tables[2];
  std::set<std::string, std::less<>>& names = tables[table == name_table::protocols ? 0 : 1];
  std::lock_guard lock(mu);
  if (auto it = names.find(name); it != names.end()) return it->c_str();
  if (names.size() >= 256) return nullptr;
  try {
    return names.emplace(name).first->c_str();
  } catch (...) {
    return nullptr;
  }
}

namespace {

// Interned, or else a copy of its own (`owned` set).
const char* keep(name_table table, std::string_view name, bool& owned) noexcept {
  if (const char* interned = intern(table, name)) return interned;
  char* copy = new (std::nothrow) char[name.size() + 1];
  if (!copy) return nullptr;
  std::memcpy(copy, name.data(), name.size());
  copy[name.size()] = '\0';
  owned = true;
  return copy;
}

}  // namespace

connection::~connection() {
  if (ssl) SSL_free(ssl);
  std::free(partial);
  if (flags & name_owned) delete[] server_name;
  if (flags & alpn_owned) delete[] alpn;
  if (peer) X509_free(peer);
}

void connection::leave_openssl() noexcept {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  bool owned = false;
  if (len) {
    alpn = keep(name_table::protocols, {reinterpret_cast<const char*>(p), len}, owned);
    if (owned) flags |= alpn_owned;
  }
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    owned = false;
    server_name = keep(name_table::server_names, name, owned);
    if (owned) flags |= name_owned;
  }
  if (X509* cert = SSL_get0_peer_certificate(ssl)) {
    X509_up_ref(cert);
    peer = cert;
  }
  if (SSL_session_reused(ssl)) flags |= resumed;
  SSL_free(ssl);
  ssl = nullptr;
}

}  // namespace nbio::tls::detail
