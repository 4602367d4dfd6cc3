// Private. The event loop on io_uring: its turn and its completions.
//
// The connection logic (open, deadlines, the transport, on_data, the write queue, close and
// reap) is the same as under epoll (the conn_*.cpp files); what changes is who moves the bytes:
//   read : a multishot receive per connection, armed once, posts a completion per arrival into
//          a buffer of the loop's provided-buffer ring. received() is the same path as epoll's
//          read. A paused connection's receive is cancelled; what arrived before the cancel
//          took effect is held and delivered on resume, as is input past the turn's
//          handshake budget.
//   write: conn::write appends to the write queue; at the end of the turn every connection
//          with bytes gets one send (writev as sendmsg), all in the turn's one io_uring_enter.
//          One send per connection is in flight at a time; its completion consumes what the
//          kernel took and sends the rest, or finds the queue drained.
//   other: multishot accept per listening socket; one-shot polls for the wake-up eventfd, UDP
//          sockets, a dial's connect and a send_file that filled the socket (sendfile is a
//          synchronous call that does not block; the poll says when to call it again).
// Close: the connection's receive and poll are cancelled (user_data names them); a send in
// flight keeps its queue (the kernel may still read it) until its completion, which finds the
// queue orphaned and releases it. Completions name their connection's slot generation, so one
// that arrives after the slot was reused is dropped.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "engine/conn_core.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_conn.hpp"
#include "engine/udp_impl.hpp"
#include "sys/socket.hpp"

namespace nbio::detail {

namespace {

std::uint32_t poll_flags_of(std::int32_t revents) noexcept {
  std::uint32_t f = 0;
  if (revents & POLLIN) f |= poll_read;
  if (revents & POLLOUT) f |= poll_write;
  if (revents & (POLLHUP | POLLRDHUP)) f |= poll_hangup;
  if (revents & POLLERR) f |= poll_error;
  return f;
}

}  // namespace

std::uint32_t loop_impl::gen_of(const conn& c) noexcept {
  return c.gen_.load(std::memory_order_relaxed);
}

bool loop_impl::current(const conn& c, std::uint64_t data) noexcept {
  return c.fd_ >= 0 && (gen_of(c) & 0xffffu) == uring_gen(data);
}

void loop_impl::run_uring() {
  ring_->enable();
  arm_wake();
  for (listen_socket* ls : listen_sockets_)
    arm_accept(*ls);
  for (udp_impl* u : udps_)
    arm_udp(*u);
  for (;;) {
    submit_sends();
    ring_->submit_and_wait(wait_timeout());
    msgs_used_ = 0;
    update_clock();
    handshake_budget_ = eng_.options().handshakes_per_turn;
    // Completions first, then timers, as under epoll (see run_epoll).
    ring_->for_each([this](std::uint64_t data, std::int32_t res, std::uint32_t flags) {
      on_completion(data, res, flags);
    });
    if (finish_turn()) break;
  }
  finish_run();
  close_ring();
}

// Everything still with the kernel is cancelled, and the loop waits (a second at most) for the
// sends of closed connections, whose queues the kernel may still be reading.
void loop_impl::close_ring() {
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(s, op_ignore);
  for (int i = 0; i < 10; ++i) {
    ring_->submit_and_wait(orphans_ ? 100 : 0);
    ring_->for_each([this](std::uint64_t data, std::int32_t res, std::uint32_t flags) {
      on_completion(data, res, flags);
    });
    reap();
    if (orphans_ == 0) break;
  }
}

void loop_impl::on_completion(std::uint64_t data, std::int32_t res, std::uint32_t flags) {
  void* p = uring_ptr(data);
  switch (data & op_mask) {
    case op_recv: {
      conn& c = *static_cast<conn*>(p);
      if (current(c, data)) {
        on_recv(c, res, flags);
      } else if (flags & IORING_CQE_F_BUFFER) {
        ring_->recycle(flags >> IORING_CQE_BUFFER_SHIFT);
      }
      return;
    }
    case op_send:
      on_send(*static_cast<write_queue*>(p), res);
      return;
    case op_pollout: {
      conn& c = *static_cast<conn*>(p);
      if (!current(c, data)) return;
      c.timer_.owner_u16 = static_cast<std::uint16_t>(c.timer_.owner_u16 & ~conn::t_pollout);
      if (c.flags_ & conn::f_closing) return;
      const std::uint32_t f = res < 0 ? poll_error : poll_flags_of(res);
      if (c.flags_ & conn::f_connecting)
        finish_connect(c, f);
      else if (c.wq_ && !c.wq_->in_flight)
        flush(c);
      return;
    }
    case op_accept:
      on_accept_completion(*static_cast<listen_socket*>(p), res, flags);
      return;
    case op_wake:
      on_wake();
      arm_wake();
      return;
    case op_udp: {
      auto& u = *static_cast<udp_impl*>(p);
      if (u.fd() < 0) return;
      u.on_readable();
      if (u.fd() >= 0) arm_udp(u);
      return;
    }
    default:
      return;
  }
}

// --- receiving ------------------------------------------------------------------------------

void loop_impl::arm_recv(conn& c) {
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_recv_multishot(s, c.fd_, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = static_cast<std::uint16_t>(ring_->buffer_group());
  io_uring_sqe_set_data64(s, uring_data(&c, op_recv, gen_of(c)));
  c.timer_.owner_u16 |= conn::t_recv_armed;
}

void loop_impl::cancel_recv(conn& c) {
  if (c.timer_.owner_u16 & conn::t_recv_armed) ring_->cancel(uring_data(&c, op_recv, gen_of(c)));
}

void loop_impl::on_recv(conn& c, std::int32_t res, std::uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE))
    c.timer_.owner_u16 = static_cast<std::uint16_t>(c.timer_.owner_u16 & ~conn::t_recv_armed);
  if (res > 0) {
    const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
    const std::span<char> bytes(ring_->buffer(id), static_cast<std::size_t>(res));
    const bool handshaking = c.has_transport() && !(c.flags_ & conn::f_opened);
    if (c.flags_ & (conn::f_closing | conn::f_eof | conn::f_close_after_flush)) {
      // Not read any more (epoll would leave them in the socket): dropped.
    } else if ((c.flags_ & (conn::f_read_paused | conn::f_in_ready_list)) ||
               (!held_.empty() && held_.contains(&c)) ||
               (c.has_transport() && (c.flags_ & conn::f_opened) &&
                transport_conn::has_kept_input(c))) {
      // Input from before waits (held, or kept by the transport past a pause or a rebind):
      // these bytes go after it.
      hold(c, {bytes.data(), bytes.size()});
      if (!(c.flags_ & conn::f_read_paused)) {
        c.flags_ |= conn::f_read_ready;
        defer_read(c);
      }
    } else if (handshaking && handshake_budget_ == 0) {
      hold(c, {bytes.data(), bytes.size()});
      c.flags_ |= conn::f_read_ready;
      defer_read(c);  // this turn's handshakes are spent
    } else {
      if (handshaking) --handshake_budget_;
      received(c, bytes);
    }
    ring_->recycle(id);
  } else if (res == 0) {
    if (c.flags_ & (conn::f_closing | conn::f_eof)) return;
    if (!held_.empty()) {
      if (auto it = held_.find(&c); it != held_.end()) {
        it->second.eof = true;  // after what is held
        return;
      }
    }
    c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_read_ready);
    on_eof(c);
    both_shut(c);
    return;
  } else if (res == -ENOBUFS) {
    // The ring ran dry: the bytes wait in the socket; the receive is armed again below.
    ++ring_->no_buffer_rearms;
  } else if (res != -ECANCELED && !(c.flags_ & conn::f_closing)) {
    close(c, errno_code(-res));
    return;
  }
  if (!(c.timer_.owner_u16 & conn::t_recv_armed) && !(c.flags_ & reading_stops)) arm_recv(c);
}

void loop_impl::received(conn& c, std::span<char> bytes) {
  bytes_in_.add(bytes.size());
  conn_core::received(c, bytes, now_);
}

void loop_impl::hold(conn& c, std::string_view bytes) {
  held_[&c].bytes.append(bytes);
}

// do_read under io_uring: what was held, then the receive armed again.
void loop_impl::deliver_held(conn& c) {
  if (c.flags_ & reading_stops) return;
  if (c.has_transport() && transport_conn::replay(c) && (c.flags_ & reading_stops)) return;
  if (!held_.empty()) {
    if (auto it = held_.find(&c); it != held_.end()) {
      if (c.has_transport() && !(c.flags_ & conn::f_opened)) {
        if (handshake_budget_ == 0) return defer_read(c);  // f_read_ready stays set
        --handshake_budget_;
      }
      c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_read_ready);
      held_input in = std::move(it->second);
      held_.erase(it);
      if (!in.bytes.empty()) received(c, in.bytes);
      if (in.eof) {
        if (c.flags_ & reading_stops) {
          held_[&c].eof = true;  // still to come, after the pause
        } else {
          on_eof(c);
          both_shut(c);
        }
        return;
      }
      if (c.flags_ & reading_stops) return;
    }
  }
  c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_read_ready);
  if (!(c.timer_.owner_u16 & conn::t_recv_armed)) arm_recv(c);
}

// --- sending --------------------------------------------------------------------------------

void loop_impl::list_send(conn& c) {
  write_queue& q = *c.wq_;
  if (q.in_flight || q.listed) return;  // its completion or this turn's end sends it
  q.listed = true;
  send_list_.emplace_back(&c, gen_of(c));
}

void loop_impl::submit_sends() {
  if (send_list_.empty()) return;
  send_swap_.swap(send_list_);
  for (auto [c, gen] : send_swap_) {
    if (gen_of(*c) != gen || c->fd_ < 0 || !c->wq_) continue;  // reaped since it was listed
    c->wq_->listed = false;
    if (!(c->flags_ & conn::f_closing) && !c->wq_->in_flight) flush(*c);
  }
  send_swap_.clear();
}

void loop_impl::submit_send(conn& c) {
  write_queue& q = *c.wq_;
  if (msgs_used_ == uring_msgs) {  // every description is taken: the kernel copies them now
    ring_->submit();
    msgs_used_ = 0;
  }
  iovec* iov = &iovs_[std::size_t{msgs_used_} * uring_iov];
  const int count = write_pool::gather(q, iov, uring_iov);
  io_uring_sqe* s = ring_->sqe();
  if (count == 1) {
    io_uring_prep_send(s, c.fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    msghdr& m = msgs_[msgs_used_++];
    m = msghdr{};
    m.msg_iov = iov;
    m.msg_iovlen = static_cast<std::size_t>(count);
    io_uring_prep_sendmsg(s, c.fd_, &m, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(s, uring_data(&q, op_send));
  q.in_flight = true;
  q.in_flight_blocks = static_cast<std::uint8_t>(count);
}

void loop_impl::on_send(write_queue& q, std::int32_t res) {
  q.in_flight = false;
  conn* c = q.owner;
  if (!c) {  // its connection closed while the kernel had it
    --orphans_;
    writes_.release(&q);
    return;
  }
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR)
      arm_pollout(*c);
    else if (!(c->flags_ & conn::f_closing))
      close(*c, errno_code(-res));
    return;
  }
  bytes_out_.add(static_cast<std::uint64_t>(res));
  c->last_active_ = now_;
  writes_.consume(q, static_cast<std::size_t>(res));
  if (!(c->flags_ & conn::f_closing)) flush(*c);  // the rest, or the queue drained
}

void loop_impl::arm_pollout(conn& c) {
  if (c.timer_.owner_u16 & conn::t_pollout) return;
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_poll_add(s, c.fd_, POLLOUT);
  io_uring_sqe_set_data64(s, uring_data(&c, op_pollout, gen_of(c)));
  c.timer_.owner_u16 |= conn::t_pollout;
}

// --- closing --------------------------------------------------------------------------------

// Both directions are finished (the peer's FIN came and our side is shut): nothing can move
// any more. epoll learns it from EPOLLHUP; here the FIN and the shutdown are both ours to see.
void loop_impl::both_shut(conn& c) {
  if (c.is_open() && (c.flags_ & conn::f_write_shut) && (c.flags_ & conn::f_eof))
    close(c, errc::eof);
}

void loop_impl::release_ring_ops(conn& c) {
  const std::uint32_t gen = gen_of(c);
  // Bytes written before the close and not yet submitted (a TLS alert, a last response): under
  // epoll the write would have put them in the socket at once, so they go now, without
  // waiting and without a queue (what the socket does not take is dropped, as under epoll).
  if (c.wq_ && !c.wq_->in_flight && c.wq_->head && !write_pool::head_file(*c.wq_) &&
      !write_pool::head_plain(*c.wq_)) {
    iovec iov[uring_iov];
    const int count = write_pool::gather(*c.wq_, iov, uring_iov);
    std::error_code ignored;
    const ssize_t n = sys::sendv(c.fd_, iov, count, ignored);
    if (n > 0) bytes_out_.add(static_cast<std::uint64_t>(n));
  }
  if (c.timer_.owner_u16 & conn::t_recv_armed) ring_->cancel(uring_data(&c, op_recv, gen));
  if (c.timer_.owner_u16 & conn::t_pollout) ring_->cancel(uring_data(&c, op_pollout, gen));
  c.timer_.owner_u16 =
      static_cast<std::uint16_t>(c.timer_.owner_u16 & ~(conn::t_recv_armed | conn::t_pollout));
  discard_queue(c);
  if (!held_.empty()) held_.erase(&c);
}

// --- the rest: listeners, wake-ups, UDP -----------------------------------------------------

void loop_impl::arm_accept(listen_socket& ls) {
  if (ls.fd < 0) return;
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_multishot_accept(s, ls.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, uring_data(&ls, op_accept));
}

void loop_impl::on_accept_completion(listen_socket& ls, std::int32_t res, std::uint32_t flags) {
  const bool more = flags & IORING_CQE_F_MORE;
  if (ls.fd < 0) {  // closed; the cancellation was not yet through
    if (res >= 0) sys::close(res);
    return;
  }
  if (res >= 0) {
    accept_one(ls, res);
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors: the connection stays in the backlog. Retry on a timer, as epoll does.
    if (!more && !ls.paused) {
      ls.paused = true;
      resume_accepting_later(ls);
    }
    return;
  }
  // ECONNABORTED, EPROTO, EINTR: that one connection is gone; the others are still accepted.
  if (!more && !ls.paused && ls.fd >= 0) arm_accept(ls);
}

void loop_impl::arm_wake() {
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_poll_add(s, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(s, uring_data(nullptr, op_wake));
}

// One-shot, armed again after each read: a socket with datagrams left (on_readable reads 64 at
// most) completes the next poll at once, as level-triggered epoll would report it again.
void loop_impl::arm_udp(udp_impl& u) {
  io_uring_sqe* s = ring_->sqe();
  io_uring_prep_poll_add(s, u.fd(), POLLIN);
  io_uring_sqe_set_data64(s, uring_data(&u, op_udp));
}

}  // namespace nbio::detail
