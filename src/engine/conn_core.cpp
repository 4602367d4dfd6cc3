// Private. The connection logic shared by the loops (both back-ends) and blocking-mode threads
// (see conn_core.hpp).
#include "engine/conn_core.hpp"

#include "engine/transport_conn.hpp"
#include "nbio/engine/handler_table.hpp"

namespace nbio::detail {

void conn_core::received(conn& c, std::span<char> bytes, std::uint32_t now) {
  const handler_table& cls = *c.cls_;  // per delivery: on_data may rebind the connection
  const bool tls = c.has_transport();
  c.last_active_ = now;
  if (tls && !(c.flags_ & conn::f_opened)) {
    // In the handshake: its own deadline stands.
  } else if (cls.read_timeout_ms) {
    c.read_deadline_ = now + cls.read_timeout_ms;
    c.flags_ |= conn::f_read_deadline;
  } else {
    c.flags_ = clear(c.flags_, conn::f_read_deadline);
  }
  if (tls)
    transport_conn::feed(c, bytes);
  else if (cls.on_data)
    cls.on_data(cls.handler, c, {bytes.data(), bytes.size()});
}

std::error_code conn_core::read_deadline_passed(conn& c) {
  c.flags_ = clear(c.flags_, conn::f_read_deadline);
  if (c.has_transport() && !(c.flags_ & conn::f_opened)) return errc::handshake_timeout;
  const handler_table& cls = *c.cls_;
  if (!cls.on_read_timeout || !cls.on_read_timeout(cls.handler, c)) return errc::read_timeout;
  return {};
}

std::error_code conn_core::idle_passed(conn& c) {
  if (c.has_transport()) transport_conn::close_notify(c, true);
  return errc::idle_timeout;
}

}  // namespace nbio::detail
