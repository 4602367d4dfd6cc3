// Public. Outgoing connections that share one handler and one set of options.
//
// dial() returns at once. A numeric address is connected straight from the chosen loop; a host
// name is resolved on the engine's resolver thread first, never on a loop. The connection then
// behaves exactly like an accepted one (on_open, on_data, ...). A failed dial (refused,
// unreachable, timeout, no such host) calls the `on_error` passed to dial(), on the loop that
// tried, and counts nothing as online.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include "nbio/core/address.hpp"

namespace nbio {

class conn;

class dialer {
 public:
  using error_handler = std::function<void(std::error_code, const std::string& remote)>;

  dialer(const dialer&) = delete;
  dialer& operator=(const dialer&) = delete;

  // Any thread. Connects to `remote` ("127.0.0.1:80", "[::1]:80", "unix:/path", "host:80"),
  // optionally from `local` ("127.0.0.2:0" picks a source address; ports of 0 are chosen by
  // the kernel). Loops are used round-robin unless `loop_index` names one.
  void dial(std::string_view remote, error_handler on_error = {}, std::string_view local = {},
            int loop_index = -1);
  // As above, and on_connect(conn&) runs on the connection's loop once it is connected, just
  // before the handler's on_open: this dial's own context (the request it carries, the client
  // it tunnels for) goes into the connection's conn_data there. It may close the connection
  // (on_open is then skipped, on_close still runs) or rebind it.
  using connect_handler = std::function<void(conn&)>;
  void dial(std::string_view remote, connect_handler on_connect, error_handler on_error,
            std::string_view local = {}, int loop_index = -1);

 protected:
  dialer() = default;
  ~dialer() = default;
};

}  // namespace nbio
