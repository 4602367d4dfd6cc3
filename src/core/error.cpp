// Private. The engine's error_category.
#include "nbio/core/error.hpp"

namespace nbio {
namespace {

class engine_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nbio"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::eof:
        return "end of stream: the peer closed the connection";
      case errc::local_close:
        return "closed locally";
      case errc::shutdown:
        return "engine shut down";
      case errc::read_timeout:
        return "read deadline exceeded";
      case errc::write_timeout:
        return "write deadline exceeded with data still queued";
      case errc::idle_timeout:
        return "idle timeout";
      case errc::write_queue_overflow:
        return "write queue overflow: the peer reads too slowly";
      case errc::not_connected:
        return "connection is gone (stale handle)";
      case errc::connect_timeout:
        return "connect timed out";
      case errc::resolve_failed:
        return "name resolution failed";
      case errc::peer_expired:
        return "UDP peer idle timeout";
      case errc::slot_too_small:
        return "rebind: the handler's conn_data does not fit the connection's slot "
               "(conn_options::reserve_data)";
      case errc::handshake_timeout:
        return "TLS handshake timed out";
    }
    return "unknown nbio error";
  }
};

}  // namespace

const std::error_category& engine_category() noexcept {
  static const engine_category_impl instance;
  return instance;
}

}  // namespace nbio
