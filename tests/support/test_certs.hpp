// Test certificates, made at run time with OpenSSL (nothing committed, nothing expires in the
// tree): a test CA and certificates it signs, written as PEM files into a temporary directory
// that lives as long as the process.
#pragma once

#include <string>

namespace nbio_test {

struct cert_files {
  std::string chain;  // PEM: the certificate (signed by the test CA)
  std::string key;    // PEM: its private key
};

struct test_pki {
  std::string dir;
  std::string ca;          // the CA certificate (PEM), for verification
  cert_files server;       // ECDSA P-256; SAN DNS:localhost, IP:127.0.0.1, IP:::1
  cert_files other_host;   // SAN DNS:other.test, DNS:*.wild.test (an SNI alternative)
  cert_files expired;      // as `server`, but expired yesterday
  cert_files wrong_host;   // SAN DNS:wrong.example only
  cert_files client;       // a client certificate (extendedKeyUsage clientAuth)
  cert_files foreign;      // as `server`, signed by a CA nobody trusts
  std::string foreign_ca;  // that CA
  // RSA 2048 versions (made on first use: an RSA key takes ~100 ms).
  const cert_files& server_rsa() const;

  // Made once per process.
  static const test_pki& get();
};

}  // namespace nbio_test
