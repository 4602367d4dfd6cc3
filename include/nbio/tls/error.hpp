// Public. The TLS layer's errors: one std::error_category whose messages are OpenSSL's own.
//
// A TLS connection that fails closes through the usual path, and on_close (or a dial's
// on_error) gets one of these as its cause:
//   - a code below 0x8000 is an OpenSSL SSL-library reason (SSL_R_*): "http request" for
//     plaintext HTTP sent to a TLS port, "wrong version number", "no shared cipher",
//     "tlsv1 alert unknown ca", ...;
//   - 0x8000 | n is a certificate that failed verification, n being X509_V_ERR_*: "certificate
//     verify failed: certificate has expired", "... Hostname mismatch";
//   - errc::library_error: an error of another OpenSSL library (the reason is logged);
//   - errc::sequence_exhausted: nbio's record layer would have to wrap a sequence number.
// The engine's errc::handshake_timeout reports a handshake that did not finish in time.
#pragma once

#include <system_error>

namespace nbio::tls {

enum class errc {
  library_error = 0x7fff,
  sequence_exhausted = 0x7ffe,  // 2^64 - 1 records under one key: the connection ends
  verify_failed = 0x8000,       // | X509_V_ERR_*
};

const std::error_category& tls_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

// An SSL-library reason (SSL_R_*) as an error_code.
inline std::error_code reason_code(int ssl_reason) noexcept {
  return {ssl_reason, tls_category()};
}

// Whether `ec` is a certificate verification failure, and which X509_V_ERR_* it is.
inline bool is_verify_error(std::error_code ec) noexcept {
  return ec.category() == tls_category() && (ec.value() & 0x8000) != 0;
}
inline int verify_result(std::error_code ec) noexcept {
  return is_verify_error(ec) ? ec.value() & 0x7fff : 0;
}

}  // namespace nbio::tls

template <>
struct std::is_error_code_enum<nbio::tls::errc> : std::true_type {};
