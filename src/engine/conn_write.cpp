// Private. Writing: straight to the socket while nothing is queued (epoll), else the write
// queue, flushed on writability (epoll) or by the turn's submission (io_uring); send_file; the
// engine-wide write budget. loop_impl members, on the loop thread.
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

// --- writing --------------------------------------------------------------------------------

// The kernel refused part of a write: from now on bytes and files wait in a queue, under the
// write timeout, flushed when the socket is writable.
bool loop_impl::start_queue(conn& c) {
  c.wq_ = writes_.acquire(c);
  if (!c.wq_) return false;
  if (c.cls_->write_timeout_ms && !(c.flags_ & conn::f_write_deadline)) {
    c.write_deadline_ = now_ + c.cls_->write_timeout_ms;
    c.flags_ |= conn::f_write_deadline;
    arm_timer(c);
  }
  if (!edge()) set_write_interest(c, true);
  return c.is_open();  // a failed registration closed it
}

std::error_code loop_impl::out_of_memory(conn& c) {
  if (!c.is_open()) return c.cause();  // start_queue's registration failed and closed it
  const std::error_code ec = errno_code(ENOMEM);
  close(c, ec);
  return ec;
}

std::error_code loop_impl::write(conn& c, std::string_view data) {
  if (collecting_ == &c) {  // flush_file's encryption of a file piece: it goes to the front
    collected_.append(data);
    return {};
  }
  if (c.flags_ & no_write) return errc::not_connected;
  if (data.empty()) return {};
  const conn_options& o = c.cls_->opts;
  std::size_t queued = c.wq_ ? c.wq_->bytes : 0;
  if (o.on_overflow == overflow_policy::reject && queued + data.size() > o.max_write_queue)
    return errc::write_queue_overflow;  // rejected whole, before any byte is sent
  // epoll: straight to the socket while nothing is queued. io_uring: always queued, and sent
  // with the turn's other writes in one submission (list_send).
  if (!c.wq_ && !ring_) {
    std::error_code ec;
    ssize_t n = sys::send(c.fd_, data.data(), data.size(), ec);
    if (n < 0) {
      if (!sys::would_block(ec)) {
        close(c, ec);
        return ec;
      }
      n = 0;
    }
    if (n > 0) {
      bytes_out_.add(static_cast<std::uint64_t>(n));
      c.last_active_ = now_;
    }
    if (static_cast<std::size_t>(n) == data.size()) return {};
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (queued + data.size() > o.max_write_queue) {
    close(c, errc::write_queue_overflow);
    return errc::write_queue_overflow;
  }
  if (!c.wq_ && !start_queue(c)) return out_of_memory(c);
  if (!writes_.append(*c.wq_, data)) return out_of_memory(c);
  if (ring_) list_send(c);
  return check_budget(c);
}

std::error_code loop_impl::check_budget(conn& c) {
  if (!writes_.over_budget()) return {};
  shed_for_budget(c);
  return c.is_open() ? std::error_code{} : errc::write_queue_overflow;
}

// The engine's queues hold more than max_write_queue_total after a write on this loop. The
// cheapest fair answer: this loop closes its own connection with the largest queue, no locks
// and no other loop's connections touched. The largest is the one that has read least of what
// it was sent, and closing it frees the most for one close; requiring 1/256 of the budget
// (write_pool::min_victim) keeps connections that read (small queues) safe when the total is
// made of many small queues. The walk over this loop's queues in use costs one pointer chase
// per backlogged connection, paid for by the >= 1 MiB it frees; a walk that finds no victim
// (the excess is on other loops, which shed on their own next write) is not repeated within
// the same millisecond tick, unless the queue that just grew has itself become large enough
// to be a victim (else a queue could grow by megabytes within that tick, unchecked). The victim's
// queue is freed now rather than when it is reaped at the end of the turn, so the next write of
// this turn sees the total already lowered and does not close a second connection for the same
// excess.
void loop_impl::shed_for_budget(const conn& grown) {
  const bool grown_is_candidate = grown.wq_ && grown.wq_->bytes >= writes_.min_victim();
  if (shed_missed_ && shed_missed_at_ == now_ && !grown_is_candidate) return;
  write_queue* q = writes_.largest_victim();
  if (!q) {
    shed_missed_ = true;
    shed_missed_at_ = now_;
    return;
  }
  shed_missed_ = false;
  conn& victim = *q->owner;
  if (victim.is_open()) {
    close(victim, errc::write_queue_overflow);
    budget_closes_.add(1);
  }
  // What close() would discard at the end of the turn (io_uring: once a send in flight is back).
  discard_queue(victim);
}

std::error_code loop_impl::send_file(conn& c, int fd, std::uint64_t offset, std::uint64_t length) {
  if (c.flags_ & no_write) return errc::not_connected;
  if (c.has_transport() && !(c.flags_ & conn::f_opened)) return errc::not_connected;
  if (length == 0) return {};
  const bool was_idle = !c.wq_;
  if (!c.wq_ && !c.has_transport()) {
    // Nothing queued (under io_uring nothing in flight either): sendfile never blocks here.
    // Nothing queued: straight to the kernel until it is full.
    while (length > 0) {
      std::error_code ec;
      const ssize_t n =
          sys::sendfile(c.fd_, fd, offset, std::min<std::uint64_t>(length, 1u << 30), ec);
      if (n < 0) {
        if (sys::would_block(ec)) break;
        close(c, ec);
        return ec;
      }
      if (n == 0) {  // the file ended early: the peer was promised bytes it will not get
        close(c, std::make_error_code(std::errc::io_error));
        return std::make_error_code(std::errc::io_error);
      }
      bytes_out_.add(static_cast<std::uint64_t>(n));
      c.last_active_ = now_;
      length -= static_cast<std::uint64_t>(n);
    }
    if (length == 0) return {};
  }
  // A queued segment holds a descriptor and a block: it counts against max_write_queue as a
  // block, so a peer that never reads cannot make the process queue descriptors without bound.
  const std::size_t queued = c.wq_ ? c.wq_->bytes : 0;
  if (queued + write_block::size > c.cls_->opts.max_write_queue) {
    close(c, errc::write_queue_overflow);
    return errc::write_queue_overflow;
  }
  std::error_code ec;
  const int copy = sys::dup_cloexec(fd, ec);
  if (copy < 0) {
    close(c, ec);
    return ec;
  }
  if (!c.wq_ && !start_queue(c)) {
    sys::close(copy);
    return out_of_memory(c);
  }
  if (!writes_.append_file(*c.wq_, copy, offset, length)) return out_of_memory(c);
  if (auto ec = check_budget(c)) return ec;
  // A transport's file is read and encrypted piece by piece as the queue drains (flush_file).
  if (ring_)
    list_send(c);
  else if (c.has_transport() && was_idle)
    flush(c);
  return {};
}

bool loop_impl::flush_file(conn& c) {
  file_segment& f = *write_pool::head_file(*c.wq_);
  if (c.has_transport()) return flush_file_transport(c, f);
  while (f.remaining > 0) {
    std::error_code ec;
    const ssize_t n =
        sys::sendfile(c.fd_, f.fd, f.offset, std::min<std::uint64_t>(f.remaining, 1u << 30), ec);
    if (n < 0) {
      if (!sys::would_block(ec))
        close(c, ec);
      else if (ring_)
        arm_pollout(c);  // io_uring: no readiness otherwise
      return false;
    }
    if (n == 0) {  // the file ended early: the peer was promised bytes it will not get
      close(c, std::make_error_code(std::errc::io_error));
      return false;
    }
    bytes_out_.add(static_cast<std::uint64_t>(n));
    c.last_active_ = now_;
    f.remaining -= static_cast<std::uint64_t>(n);
  }
  writes_.pop_file(*c.wq_);
  return true;
}

void loop_impl::flush(conn& c) {
  constexpr int max_iov = 64;
  iovec iov[max_iov];
  while (c.wq_) {
    if (c.wq_->in_flight) return;  // io_uring: its completion continues
    if (!c.wq_->head) {
      drained(c);
      return;
    }
    if (write_pool::head_file(*c.wq_)) {
      if (!flush_file(c)) return;
      continue;
    }
    if (write_pool::head_plain(*c.wq_)) {
      if (!flush_plain_transport(c)) return;
      continue;
    }
    if (ring_) return submit_send(c);
    int count = write_pool::gather(*c.wq_, iov, max_iov);
    std::size_t offered = 0;
    for (int i = 0; i < count; ++i)
      offered += iov[i].iov_len;
    std::error_code ec;
    ssize_t n = sys::sendv(c.fd_, iov, count, ec);
    if (n < 0) {
      if (!sys::would_block(ec)) close(c, ec);
      return;
    }
    bytes_out_.add(static_cast<std::uint64_t>(n));
    c.last_active_ = now_;
    writes_.consume(*c.wq_, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < offered) return;  // the kernel is full: wait for EPOLLOUT
  }
}

void loop_impl::drained(conn& c) {
  writes_.release(c.wq_);
  c.wq_ = nullptr;
  c.flags_ = clear(c.flags_, conn::f_write_deadline);
  if (!edge()) set_write_interest(c, false);
  if (c.flags_ & conn::f_close_after_flush) {
    close(c, c.cause());
    return;
  }
  if (c.flags_ & conn::f_shutdown_pending) {
    ::shutdown(c.fd_, SHUT_WR);
    c.flags_ = clear(c.flags_, conn::f_shutdown_pending);
    c.flags_ |= conn::f_write_shut;
    if (ring_) both_shut(c);
  }
  if (c.cls_->on_drained) c.cls_->on_drained(c.cls_->handler, c);
}

void loop_impl::set_write_interest(conn& c, bool on) {
  // Level-triggered only: edge-triggered registrations never change.
  bool reading = !(c.flags_ & (conn::f_read_paused | conn::f_eof | conn::f_close_after_flush));
  std::uint32_t interest = (reading ? poll_read : 0u) | (on ? poll_write : 0u);
  // A registration that cannot change (ENOMEM) would leave queued bytes unflushed, or input
  // unread, for ever: the connection ends with the error instead (found by the fault sweep).
  if (auto ec = poller_.modify(c.fd_, interest, false, &c)) close(c, ec);
}

}  // namespace nbio::detail
