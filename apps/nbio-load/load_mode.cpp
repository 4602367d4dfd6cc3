#include "load_mode.hpp"

#include <stdexcept>
#include <string>

#include "http_mode.hpp"
#include "idle_mode.hpp"
#include "load_options.hpp"
#include "tcp_echo_mode.hpp"
#include "ws_mode.hpp"

namespace nbio_load {

std::unique_ptr<load_mode> make_load_mode(const load_options& options) {
  if (options.mode == "idle") return std::make_unique<idle_mode>();
  if (options.mode == "tcp-echo") return std::make_unique<tcp_echo_mode>(options.payload_size);
  if (options.mode == "http")
    return std::make_unique<http_mode>(options.remote(0), options.path, options.pipeline);
  if (options.mode == "tls-handshake")
    return std::make_unique<http_mode>(options.remote(0), options.path, 1, true);
  if (options.mode == "ws-echo" || options.mode == "ws-idle")
    return std::make_unique<ws_mode>(options.remote(0), options.path, options.payload_size,
                                     options.mode == "ws-echo");
  throw std::invalid_argument(std::string("unknown mode: ").append(options.mode));
}

}  // namespace nbio_load
