// Private. Closing: close (the first cause wins), close after the queue drains, shutdown of the
// write side, and the reap at the end of the turn that delivers on_close and frees the slot.
// loop_impl members, on the loop thread.
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

// --- closing --------------------------------------------------------------------------------

void loop_impl::close(conn& c, std::error_code reason) {
  if (c.flags_ & conn::f_closing) return;  // the first cause wins
  c.flags_ |= conn::f_closing;
  c.set_cause(reason);
  wheel_.cancel(c.timer_);
  closing_.push_back(&c);
}

void loop_impl::close_after_flush(conn& c, std::error_code reason) {
  if (c.flags_ & (conn::f_closing | conn::f_close_after_flush)) return;
  if (!c.wq_) {
    close(c, reason);
    return;
  }
  c.set_cause(reason);
  c.flags_ |= conn::f_close_after_flush;
  if (!edge()) set_write_interest(c, true);
}

void loop_impl::shutdown_write(conn& c) {
  if (c.flags_ & (conn::f_closing | conn::f_write_shut)) return;
  if (c.wq_) {
    c.flags_ |= conn::f_shutdown_pending;
    return;
  }
  ::shutdown(c.fd_, SHUT_WR);
  c.flags_ |= conn::f_write_shut;
  if (ring_) both_shut(c);
}

void loop_impl::reap() {
  // Index loop: on_close may close further connections, which land at the end of the list.
  for (std::size_t i = 0; i < closing_.size(); ++i) {
    conn& c = *closing_[i];
    const handler_table& cls = *c.cls_;
    std::error_code reason = c.cause();
    if (c.flags_ & conn::f_connecting) {
      dial_state* ds = c.ds_;
      c.wq_ = nullptr;
      if (ds->on_error) ds->on_error(reason, ds->remote);
      delete ds;
    } else {
      if ((c.flags_ & conn::f_opened) && cls.on_close) cls.on_close(cls.handler, c, reason);
      online_.sub(1);
      closed_.add(1);
      if (c.flags_ & conn::f_listener_counted) static_cast<listener_impl*>(cls.owner)->closed();
    }
    if (c.has_transport()) transport_conn::release(c, reason);
    if (cls.destroy_data) cls.destroy_data(data_of(c));
    // Still on the ready list: run_ready skips an entry whose flag is clear (a freed slot, or one
    // reused by a connection that is not on the list itself).
    c.flags_ = clear(c.flags_, conn::f_in_ready_list);
    if (ring_ && !(c.flags_ & conn::f_blocking)) release_ring_ops(c);
    discard_queue(c);
    wheel_.cancel(c.timer_);  // the free list reuses the timer's links
    sys::close(c.fd_);        // also removes it from epoll (we never dup sockets)
    c.gen_.store(c.gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    conn_pool::pool_of(&c).free(&c);
  }
  closing_.clear();
}

// Both back-ends: the queue goes back to the pool now, or, with an io_uring send in flight (the
// kernel may still read its head blocks), once that send completes.
void loop_impl::discard_queue(conn& c) {
  write_queue* q = c.wq_;
  if (!q) return;
  c.wq_ = nullptr;
  if (q->in_flight) {
    // The blocks past the send's stay out of the kernel's hands: freed now, so the write budget
    // sees the total lowered at once (shed_for_budget).
    writes_.keep_head(*q, q->in_flight_blocks);
    q->owner = nullptr;
    ring_->cancel(uring_data(q, op_send));
    ++orphans_;
    return;
  }
  writes_.release(q);
}

}  // namespace nbio::detail
