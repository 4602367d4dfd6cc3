// Test support. An engine with one listener, started on construction and stopped (by the
// engine's destructor) on destruction. Declare the state its handlers point at before it.
#pragma once

#include <string_view>
#include <utility>

#include "nbio/engine/engine.hpp"

namespace nbio_test {

inline nbio::engine_options two_loops() {
  return {.loops = 2};
}

class test_server {
 public:
  template <class Handler>
  explicit test_server(Handler handler, nbio::listen_options options = {},
                       nbio::engine_options config = two_loops(),
                       std::string_view addr = "127.0.0.1:0")
      : engine_(config) {
    listener_ = &engine_.listen(addr, std::move(handler), options);
    engine_.start();
  }

  nbio::engine& engine() noexcept { return engine_; }
  nbio::listener& listener() noexcept { return *listener_; }
  const nbio::address& address() const noexcept { return listener_->local_address(); }

 private:
  nbio::engine engine_;
  nbio::listener* listener_ = nullptr;
};

}  // namespace nbio_test
