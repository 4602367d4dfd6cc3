// Private. A dialer and the state of one dial in progress.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "nbio/engine/config.hpp"
#include "nbio/engine/dialer.hpp"
#include "nbio/engine/handler_table.hpp"

namespace nbio::detail {

class engine_impl;

// Lives in the connection's write-queue pointer while connect() is in flight, so a dial costs
// the slot nothing extra.
struct dial_state {
  dialer::error_handler on_error;
  dialer::connect_handler on_connect;
  std::string remote;
  std::uint32_t timeout_ms = 0;
  int family = 0;
};

class dialer_impl final : public dialer {
 public:
  dialer_impl(engine_impl& eng, std::unique_ptr<handler_table> cls, dial_options options)
      : eng_(eng), cls_(std::move(cls)), options_(options) {}

  void dial(std::string_view remote, connect_handler on_connect, error_handler on_error,
            std::string_view local, int loop_index);
  const handler_table& cls() const noexcept { return *cls_; }
  const dial_options& options() const noexcept { return options_; }

 private:
  engine_impl& eng_;
  std::unique_ptr<handler_table> cls_;
  dial_options options_;
  std::atomic<std::size_t> rr_{0};
};

}  // namespace nbio::detail
