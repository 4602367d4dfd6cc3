// Private. The TLS error category: OpenSSL's reason strings, and the mapping from OpenSSL's
// error queue to a 16-bit code a connection's close cause can hold.
#include "nbio/tls/error.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

#include "tls/ssl_error.hpp"

namespace nbio::tls {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nbio.tls"; }
  std::string message(int ev) const override {
    if (ev & 0x8000) {
      return std::string("certificate verify failed: ") +
             X509_verify_cert_error_string(static_cast<long>(ev & 0x7fff));
    }
    if (ev == static_cast<int>(errc::library_error))
      return "TLS library error (OpenSSL, outside its SSL library)";
    if (ev == static_cast<int>(errc::sequence_exhausted))
      return "TLS record sequence number exhausted";
    const char* r = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, ev));
    return r ? std::string("TLS: ") + r : "TLS error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& tls_category() noexcept {
  // OpenSSL loads its reason strings when it initialises libssl: before any context exists a
  // message would otherwise be a number.
  static const category_impl instance = [] {
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr);
    return category_impl();
  }();
  return instance;
}

namespace detail {

std::error_code take_error(const SSL* ssl) {
  const unsigned long e = ERR_peek_last_error();
  std::error_code ec = make_error_code(errc::library_error);
  if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
    const int reason = ERR_GET_REASON(e);
    ec = reason_code(reason & 0x7fff);
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl) {
      const long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) ec = {0x8000 | static_cast<int>(v & 0x7fff), tls_category()};
    }
  }
  ERR_clear_error();
  return ec;
}

std::string error_text() {
  std::string text;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

}  // namespace detail
}  // namespace nbio::tls
