// Unit: the TLS error category: OpenSSL's reason text for SSL-library reasons, the verify
// result text for certificate failures (0x8000 | X509_V_ERR_*), and the helpers that tell them
// apart.
#include <gtest/gtest.h>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <system_error>

#include <nbio/core/error.hpp>
#include <nbio/tls/context.hpp>
#include <nbio/tls/error.hpp>

namespace {

// Case-insensitive: OpenSSL's texts change case between versions ("Hostname mismatch").
bool contains(std::string text, std::string part) {
  auto lower = [](std::string& s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  };
  lower(text);
  lower(part);
  return text.find(part) != std::string::npos;
}

// OpenSSL loads its SSL-library reason strings when it initialises that library, which making
// any context does; a process that logs a TLS error has always made one.
void with_a_context() {
  static auto ctx = nbio::tls::context::client({.verify = false});
}

TEST(tls_error, the_category_has_a_name) {
  EXPECT_STREQ(nbio::tls::tls_category().name(), "nbio.tls");
}

TEST(tls_error, an_ssl_reason_reads_as_openssl_says_it_before_any_context_exists) {
  const std::error_code http = nbio::tls::reason_code(SSL_R_HTTP_REQUEST);
  EXPECT_TRUE(contains(http.message(), "http request")) << http.message();
}

TEST(tls_error, an_ssl_reason_reads_as_openssl_says_it) {
  with_a_context();
  static_assert(SSL_R_HTTP_REQUEST == 156);
  const std::error_code http = nbio::tls::reason_code(SSL_R_HTTP_REQUEST);
  EXPECT_TRUE(contains(http.message(), "http request")) << http.message();
  EXPECT_FALSE(nbio::tls::is_verify_error(http));
  EXPECT_EQ(nbio::tls::verify_result(http), 0);

  const std::error_code version = nbio::tls::reason_code(SSL_R_WRONG_VERSION_NUMBER);
  EXPECT_TRUE(contains(version.message(), "wrong version number")) << version.message();
  const std::error_code cipher = nbio::tls::reason_code(SSL_R_NO_SHARED_CIPHER);
  EXPECT_TRUE(contains(cipher.message(), "no shared cipher")) << cipher.message();
  // An alert the peer sent: SSL_R_TLSV1_ALERT_UNKNOWN_CA is 1000 + the alert number (48).
  const std::error_code ca = nbio::tls::reason_code(SSL_R_TLSV1_ALERT_UNKNOWN_CA);
  EXPECT_TRUE(contains(ca.message(), "unknown ca")) << ca.message();
  const std::error_code alpn = nbio::tls::reason_code(SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
  EXPECT_TRUE(contains(alpn.message(), "no application protocol")) << alpn.message();
}

TEST(tls_error, a_verify_failure_names_the_certificate_problem) {
  const std::error_code expired{0x8000 | X509_V_ERR_CERT_HAS_EXPIRED, nbio::tls::tls_category()};
  EXPECT_TRUE(nbio::tls::is_verify_error(expired));
  EXPECT_EQ(nbio::tls::verify_result(expired), X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_TRUE(contains(expired.message(), "certificate verify failed")) << expired.message();
  EXPECT_TRUE(contains(expired.message(), "certificate has expired")) << expired.message();

  const std::error_code host{0x8000 | X509_V_ERR_HOSTNAME_MISMATCH, nbio::tls::tls_category()};
  EXPECT_EQ(nbio::tls::verify_result(host), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_TRUE(contains(host.message(), "Hostname mismatch")) << host.message();

  const std::error_code ip{0x8000 | X509_V_ERR_IP_ADDRESS_MISMATCH, nbio::tls::tls_category()};
  EXPECT_TRUE(contains(ip.message(), "IP address mismatch")) << ip.message();

  const std::error_code issuer{0x8000 | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                               nbio::tls::tls_category()};
  EXPECT_TRUE(contains(issuer.message(), "unable to get local issuer certificate"))
      << issuer.message();
}

TEST(tls_error, the_enum_converts_and_library_errors_are_not_verify_errors) {
  const std::error_code lib = nbio::tls::errc::library_error;
  EXPECT_EQ(lib.category(), nbio::tls::tls_category());
  EXPECT_EQ(lib.value(), 0x7fff);
  EXPECT_FALSE(nbio::tls::is_verify_error(lib));
  EXPECT_FALSE(lib.message().empty());
  EXPECT_TRUE(contains(lib.message(), "OpenSSL")) << lib.message();

  const std::error_code verify = nbio::tls::errc::verify_failed;
  EXPECT_TRUE(nbio::tls::is_verify_error(verify));
  EXPECT_EQ(nbio::tls::verify_result(verify), 0);  // X509_V_OK: no particular reason
}

TEST(tls_error, codes_of_other_categories_are_never_verify_errors) {
  // The same value in another category must not pass for a TLS verify failure.
  const std::error_code generic{0x8000 | X509_V_ERR_CERT_HAS_EXPIRED, std::generic_category()};
  EXPECT_FALSE(nbio::tls::is_verify_error(generic));
  EXPECT_EQ(nbio::tls::verify_result(generic), 0);
  const std::error_code timeout = nbio::errc::handshake_timeout;
  EXPECT_FALSE(nbio::tls::is_verify_error(timeout));
  EXPECT_NE(timeout.category(), nbio::tls::tls_category());
  EXPECT_FALSE(timeout.message().empty());
}

TEST(tls_error, an_unknown_reason_still_has_a_message) {
  const std::error_code odd = nbio::tls::reason_code(0x7ffe);
  EXPECT_FALSE(odd.message().empty());
  EXPECT_FALSE(nbio::tls::is_verify_error(odd));
}

}  // namespace
