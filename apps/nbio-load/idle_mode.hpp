// nbio-load. Mode `idle`: opens connections and holds them; sends nothing. Bytes from the server
// are unexpected and close the connection (counted as an error).
#pragma once

#include "load_mode.hpp"

namespace nbio_load {

class idle_mode final : public load_mode {
 public:
  std::string_view name() const noexcept override { return "idle"; }
  bool sends() const noexcept override { return false; }
  std::string_view request() const noexcept override { return {}; }
  reply_scan scan(std::uint64_t&, std::string_view) const noexcept override {
    return {.replies = 0, .error = true};
  }
};

}  // namespace nbio_load
