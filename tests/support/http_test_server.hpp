// Test support. An nbio::http::server on its own engine, listening on 127.0.0.1 (port chosen by
// the kernel), started on construction and stopped (by the engine's destructor) on destruction.
// Declare the state its handler points at before it.
#pragma once

#include <utility>

#include "nbio/engine/engine.hpp"
#include "nbio/http/server.hpp"

namespace nbio_test {

class http_test_server {
 public:
  http_test_server(nbio::http::handler h, nbio::http::server_config config = {},
                   nbio::listen_options options = {}, nbio::engine_config engine = {.loops = 2})
      : engine_(engine), server_(engine_, std::move(h), config) {
    listener_ = &server_.listen("127.0.0.1:0", options);
    engine_.start();
  }

  // The engine stops first (server.hpp: no handler runs while the server goes away).
  ~http_test_server() { engine_.stop(); }
  http_test_server(const http_test_server&) = delete;
  http_test_server& operator=(const http_test_server&) = delete;

  nbio::engine& engine() noexcept { return engine_; }
  nbio::http::server& server() noexcept { return server_; }
  nbio::listener& listener() noexcept { return *listener_; }
  const nbio::address& address() const noexcept { return listener_->local_address(); }

 private:
  nbio::engine engine_;
  nbio::http::server server_;
  nbio::listener* listener_ = nullptr;
};

}  // namespace nbio_test
