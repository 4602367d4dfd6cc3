// Private. Deadlines: the read, write and idle deadlines of a connection share one entry on the
// loop's timer wheel, set to the earliest. loop_impl members, on the loop thread; what a passed
// deadline means is conn_core's (the same for blocking mode).
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "engine/blocking_runner.hpp"
#include "engine/blocking_state.hpp"
#include "engine/conn_core.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_conn.hpp"
#include "sys/socket.hpp"

namespace nbio::detail {

void loop_impl::rebound(conn& c) {
  c.last_active_ = now_;
  if (c.cls_->read_timeout_ms) {
    c.read_deadline_ = now_ + c.cls_->read_timeout_ms;
    c.flags_ |= conn::f_read_deadline;
  } else {
    c.flags_ = clear(c.flags_, conn::f_read_deadline);
  }
  arm_timer(c);
}

void loop_impl::set_read_deadline(conn& c, std::uint32_t ms) {
  if (!ms) {
    c.flags_ = clear(c.flags_, conn::f_read_deadline);
    return;
  }
  c.read_deadline_ = now_ + ms;
  c.flags_ |= conn::f_read_deadline;
  arm_timer(c);
}

void loop_impl::set_write_deadline(conn& c, std::uint32_t ms) {
  if (!ms) {
    c.flags_ = clear(c.flags_, conn::f_write_deadline);
    return;
  }
  c.write_deadline_ = now_ + ms;
  c.flags_ |= conn::f_write_deadline;
  arm_timer(c);
}

// One wheel entry per connection, set to its earliest deadline. Deadlines that move later (a
// read pushing the read or idle deadline out) do not touch the wheel: when the entry fires
// early, on_conn_timer re-arms it. So a read costs a store, not a wheel operation.
void loop_impl::arm_timer(conn& c) {
  if (c.flags_ & conn::f_closing) return;  // closed: its slot may be freed this turn
  bool any = false;
  std::uint32_t best = 0;
  auto consider = [&](std::uint32_t t) {
    if (!any || static_cast<std::int32_t>(t - best) < 0) best = t;
    any = true;
  };
  if (c.flags_ & conn::f_read_deadline) consider(c.read_deadline_);
  if (c.flags_ & conn::f_write_deadline) consider(c.write_deadline_);
  if (c.cls_->idle_timeout_ms && !(c.flags_ & conn::f_connecting))
    consider(c.last_active_ + c.cls_->idle_timeout_ms);
  if (!any) {
    wheel_.cancel(c.timer_);
    return;
  }
  if (!c.timer_.scheduled() || static_cast<std::int32_t>(best - c.timer_.expires) < 0)
    wheel_.schedule(c.timer_, best);
}

void loop_impl::on_conn_timer(conn& c) {
  if (c.flags_ & conn::f_closing) return;
  if (c.flags_ & conn::f_connecting) {
    if (due(c.write_deadline_, now_)) return close(c, errc::connect_timeout);
    return arm_timer(c);
  }
  if ((c.flags_ & conn::f_read_deadline) && due(c.read_deadline_, now_)) {
    if (auto ec = conn_core::read_deadline_passed(c)) return close(c, ec);
    if (!c.is_open()) return;
  }
  if ((c.flags_ & conn::f_write_deadline) && due(c.write_deadline_, now_)) {
    if (c.wq_) return close(c, errc::write_timeout);
    c.flags_ = clear(c.flags_, conn::f_write_deadline);  // nothing was pending
  }
  if (c.cls_->idle_timeout_ms && due(c.last_active_ + c.cls_->idle_timeout_ms, now_))
    return close(c, conn_core::idle_passed(c));
  arm_timer(c);
}

}  // namespace nbio::detail
