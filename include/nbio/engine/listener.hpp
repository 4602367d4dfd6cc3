// Public. A listening address of an engine: TCP over IPv4/IPv6, or a Unix domain socket.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nbio/core/address.hpp"

namespace nbio {

class listener {
 public:
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // The bound address, with the port the kernel chose when the listen address had port 0.
  const address& local_address() const noexcept;
  // Connections of this listener open now (all loops and modes).
  std::size_t online() const noexcept;
  // Connections of this listener served in blocking mode now.
  std::size_t blocking_online() const noexcept;

 protected:
  listener() = default;
  ~listener() = default;
};

}  // namespace nbio
