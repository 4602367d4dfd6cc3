// Private. OpenSSL's thread-local error queue to an error_code (I/O path) or a text (setup).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <system_error>

namespace nbio::tls::detail {

// The last error on the queue as a close cause (a verify failure with its X509_V_ERR_*), and
// the queue cleared.
std::error_code take_error(const SSL* ssl);
// Every error on the queue, as OpenSSL prints them, and the queue cleared (setup errors).
std::string error_text();

}  // namespace nbio::tls::detail
