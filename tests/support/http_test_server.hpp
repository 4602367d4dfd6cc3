// Test support. An nbio::http::server on its own engine, listening on 127.0.0.1 (port chosen by
// the kernel), started on construction and stopped (by the engine's destructor) on destruction.
// Declare the state its handler points at before it.
//
// With NBIO_TEST_OVER_TLS=1 in the environment the server listens with TLS (the test PKI's
// server certificate) and address() is a tls_shim's plaintext port in front of it: the HTTP
// suites then run unchanged over TLS (ctest's http_suites_over_tls).
#pragma once

#include <memory>
#include <utility>

#include "nbio/engine/engine.hpp"
#include "nbio/http/server.hpp"
#include "nbio/tls/context.hpp"
#include "support/test_certs.hpp"
#include "support/tls_shim.hpp"

namespace nbio_test {

class http_test_server {
 public:
  http_test_server(nbio::http::handler h, nbio::http::server_options config = {},
                   nbio::listen_options options = {}, nbio::engine_options engine = {.loops = 2})
      : engine_(engine), server_(engine_, std::move(h), config) {
    if (over_tls()) {
      const test_pki& pki = test_pki::get();
      options.tls = nbio::tls::context::server({.cert = {pki.server.chain, pki.server.key}});
    }
    listener_ = &server_.listen("127.0.0.1:0", options);
    engine_.start();
    if (over_tls())
      shim_ = std::make_unique<tls_shim>(listener_->local_address(), test_pki::get().ca);
  }

  // The engine stops first (server.hpp: no handler runs while the server goes away).
  ~http_test_server() {
    shim_.reset();
    engine_.stop();
  }
  http_test_server(const http_test_server&) = delete;
  http_test_server& operator=(const http_test_server&) = delete;

  nbio::engine& engine() noexcept { return engine_; }
  nbio::http::server& server() noexcept { return server_; }
  nbio::listener& listener() noexcept { return *listener_; }
  const nbio::address& address() const noexcept {
    return shim_ ? shim_->address() : listener_->local_address();
  }

 private:
  nbio::engine engine_;
  nbio::http::server server_;
  nbio::listener* listener_ = nullptr;
  std::unique_ptr<tls_shim> shim_;
};

}  // namespace nbio_test
