// Test support. A TLS client in front of a TLS server, for tests written against plaintext: it
// listens on 127.0.0.1 (plaintext) and carries each connection to `target` over TLS (OpenSSL,
// verifying the test CA), byte for byte both ways, passing on half-closes (FIN <-> close_notify
// + FIN) and resets. http_test_server puts one in front of its server when the environment has
// NBIO_TEST_OVER_TLS=1, so the HTTP suites run unchanged over TLS.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nbio/core/address.hpp"
#include "support/unique_fd.hpp"

namespace nbio_test {

class tls_shim {
 public:
  tls_shim(const nbio::address& target, const std::string& ca_file);
  ~tls_shim();
  tls_shim(const tls_shim&) = delete;
  tls_shim& operator=(const tls_shim&) = delete;

  const nbio::address& address() const noexcept { return address_; }

 private:
  void accept_loop();
  void carry(unique_fd plain);

  nbio::address target_;
  nbio::address address_;
  unique_fd listener_;
  void* ctx_ = nullptr;  // SSL_CTX*
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// Whether the HTTP suites run over TLS (NBIO_TEST_OVER_TLS=1).
bool over_tls();

}  // namespace nbio_test
