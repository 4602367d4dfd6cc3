// Private. The connection state machine: open, read, write, deadlines, close, reap. These are
// loop_impl members (they run on the loop thread); conn's public functions forward here, or to
// blocking_runner for a blocking-mode connection.
#include "nbio/engine/conn.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "engine/blocking_runner.hpp"
#include "engine/blocking_state.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_glue.hpp"
#include "sys/socket.hpp"

namespace nbio {

using detail::blocking_runner;
using detail::loop_impl;
using detail::transport_glue;

std::error_code conn::write(std::string_view data) {
  if (has_transport()) return transport_glue::write(*this, data);
  if (flags_ & f_blocking) return blocking_runner::write(*this, data);
  return loop_impl::of(*this).write(*this, data);
}

std::error_code conn::send_file(int fd, std::uint64_t offset, std::uint64_t length) {
  if (flags_ & f_blocking) return blocking_runner::send_file(*this, fd, offset, length);
  return loop_impl::of(*this).send_file(*this, fd, offset, length);
}

void conn::close(std::error_code reason) {
  // The handler ends the stream: tell a TLS peer so (best effort: what is queued is dropped).
  if (has_transport() && is_open()) transport_glue::close_notify(*this, true);
  if (flags_ & f_blocking) return blocking_runner::close(*this, reason);
  loop_impl::of(*this).close(*this, reason);
}

void conn::close_after_flush() {
  if (has_transport() && is_open() && !(flags_ & f_close_after_flush))
    transport_glue::close_notify(*this, (flags_ & f_blocking) != 0);
  if (flags_ & f_blocking) return blocking_runner::close(*this, errc::local_close);
  loop_impl::of(*this).close_after_flush(*this, errc::local_close);
}

void conn::shutdown_write() {
  if (has_transport() && is_open() && !(flags_ & (f_write_shut | f_shutdown_pending)))
    transport_glue::close_notify(*this, false);
  if (flags_ & f_blocking) return blocking_runner::shutdown_write(*this);
  loop_impl::of(*this).shutdown_write(*this);
}

void conn::pause_read() {
  if (flags_ & f_blocking) {
    flags_ |= f_read_paused;
    return;
  }
  loop_impl::of(*this).pause_read(*this);
}

void conn::resume_read() {
  if (flags_ & f_blocking) {
    flags_ &= static_cast<std::uint16_t>(~f_read_paused);
    return;
  }
  loop_impl::of(*this).resume_read(*this);
}

void conn::set_read_deadline(std::chrono::milliseconds from_now) {
  std::uint32_t ms = timer_wheel::clamp_delay(from_now.count());
  if (flags_ & f_blocking) return blocking_runner::set_read_deadline(*this, ms);
  loop_impl::of(*this).set_read_deadline(*this, ms);
}

void conn::set_write_deadline(std::chrono::milliseconds from_now) {
  std::uint32_t ms = timer_wheel::clamp_delay(from_now.count());
  if (flags_ & f_blocking) return blocking_runner::set_write_deadline(*this, ms);
  loop_impl::of(*this).set_write_deadline(*this, ms);
}

std::size_t conn::queued_bytes() const noexcept {
  if (flags_ & (f_blocking | f_connecting)) return 0;
  return wq_ ? wq_->bytes : 0;
}

address conn::remote_address() const {
  return sys::peer_address(fd_);
}
address conn::local_address() const {
  return sys::local_address(fd_);
}
loop& conn::owner_loop() const noexcept {
  return loop_impl::of(*this);
}

std::error_code conn::rebind_with(const binding& to, std::string_view already_read,
                                  void (*init)(conn&, void*), void* init_arg) {
  if (flags_ & f_closing) return errc::not_connected;
  const detail::conn_class& next = to.cls();
  if (next.data_size > data_capacity()) return errc::slot_too_small;
  const detail::conn_class& prev = *cls_;
  if (prev.destroy_data) prev.destroy_data(reinterpret_cast<char*>(this) + sizeof(conn));
  if (flags_ & f_listener_counted) {
    static_cast<detail::listener_impl*>(prev.owner)->closed();
    flags_ = static_cast<std::uint16_t>(flags_ & ~f_listener_counted);
  }
  cls_ = &next;
  if (next.construct_data) next.construct_data(reinterpret_cast<char*>(this) + sizeof(conn));
  if (init) init(*this, init_arg);
  if (flags_ & f_blocking)
    blocking_runner::rebound(*this);
  else
    loop_impl::of(*this).rebound(*this);
  if (next.on_open) next.on_open(next.handler, *this);
  if (!already_read.empty() && is_open() && next.on_data)
    next.on_data(next.handler, *this, already_read);
  return {};
}

std::size_t conn::data_capacity() const noexcept {
  return detail::conn_pool::pool_of(this).slot_size() - sizeof(conn) -
         (has_transport() ? detail::transport_slot_size : 0);
}

void conn::check_data_type(const void* tag) const noexcept {
  if (cls_->data_type != tag) {
    std::fprintf(stderr, "nbio: conn::data<T>() with a T other than the handler's conn_data\n");
    std::abort();
  }
}

namespace detail {

static bool due(std::uint32_t deadline, std::uint32_t now) noexcept {
  return static_cast<std::int32_t>(deadline - now) <= 0;
}

static void* data_of(conn& c) noexcept {
  return reinterpret_cast<char*>(&c) + sizeof(conn);
}

constexpr std::uint16_t clear(std::uint16_t flags, std::uint16_t bits) noexcept {
  return static_cast<std::uint16_t>(flags & ~bits);
}

// --- allocation and open --------------------------------------------------------------------

conn_pool& loop_impl::pool_for(std::uint32_t slot_size) {
  for (auto& p : pools_)
    if (p->slot_size() == slot_size) return *p;
  return *pools_.emplace_back(std::make_unique<conn_pool>(*this, slot_size));
}

conn* loop_impl::allocate(const conn_class& cls) {
  const std::size_t data = std::max<std::size_t>(cls.data_size, cls.opts.reserve_data) +
                           (cls.tls ? transport_slot_size : 0);
  auto slot = static_cast<std::uint32_t>((sizeof(conn) + data + 15) & ~std::size_t{15});
  conn* c = pool_for(slot).allocate();
  c->timer_.tag = timer_conn;
  c->cls_ = &cls;
  c->wq_ = nullptr;
  c->flags_ = 0;
  c->close_code_ = 0;
  c->last_active_ = now_;
  c->read_deadline_ = c->write_deadline_ = 0;
  c->timer_.owner_u16 = 0;
  if (cls.construct_data) cls.construct_data(data_of(*c));
  if (cls.tls) {
    c->timer_.owner_u16 |= conn::t_transport;
    transport_glue::slot(*c) = transport_slot{};
  }
  return c;
}

conn* loop_impl::adopt(int fd, const conn_class& cls, listener_impl* owner) {
  if (stopping_) {
    sys::close(fd);
    if (owner) owner->closed();
    return nullptr;
  }
  conn* c = allocate(cls);
  c->fd_ = fd;
  accepted_.add(1);
  online_.add(1);
  if (owner) {
    c->flags_ |= conn::f_listener_counted;
    sys::apply_conn_options(fd, owner->local_address().family(), cls.opts);
    io_mode mode = owner->options().mode;
    if (mode != io_mode::nonblocking && owner->claim_blocking()) {
      if (blocking_runner::start(*this, *c)) {
        blocking_.insert(c);
        return c;
      }
      owner->release_blocking();  // no thread to be had: serve it from the loop instead
    }
  }
  if (ring_) {
    arm_recv(*c);
  } else {
    std::uint32_t interest = edge() ? (poll_read | poll_write) : poll_read;
    if (auto ec = poller_.add(fd, interest, edge(), c)) {
      close(*c, ec);
      return c;
    }
  }
  if (cls.read_timeout_ms) {
    c->read_deadline_ = now_ + cls.read_timeout_ms;
    c->flags_ |= conn::f_read_deadline;
  }
  arm_timer(*c);
  if (c->has_transport()) {
    transport_glue::open(*c, cls, true, {});
    return c;
  }
  c->flags_ |= conn::f_opened;
  if (cls.on_open) cls.on_open(cls.handler, *c);
  if (draining_ && c->is_open()) finish_for_shutdown(*c);  // handed out after the drain began
  return c;
}

// --- dialing --------------------------------------------------------------------------------

void loop_impl::start_dial(const address& remote, const address& local, const conn_class& cls,
                           dial_state&& dial) {
  auto ds = std::make_unique<dial_state>(std::move(dial));
  std::error_code ec;
  if (stopping_) ec = errc::shutdown;
  int fd = ec ? -1 : sys::open_socket(remote.family(), SOCK_STREAM, ec);
  if (fd >= 0 && local.size() > 0) ec = sys::bind_source(fd, local);
  bool connected = false;
  if (!ec) ec = sys::connect(fd, remote, connected);
  if (ec) {
    sys::close(fd);
    if (ds->on_error) ds->on_error(ec, ds->remote);
    return;
  }
  conn* c = allocate(cls);
  c->fd_ = fd;
  c->flags_ = conn::f_connecting;
  c->ds_ = ds.release();
  c->ds_->family = remote.family();
  if (c->ds_->timeout_ms) {  // 0: no connect timeout (the kernel's own applies)
    c->write_deadline_ = now_ + c->ds_->timeout_ms;
    c->flags_ |= conn::f_write_deadline;
    arm_timer(*c);
  }
  if (ring_) {
    if (!connected) arm_pollout(*c);
  } else if (auto err =
                 poller_.add(fd, edge() ? (poll_read | poll_write) : poll_write, edge(), c)) {
    close(*c, err);
    return;
  }
  if (connected) finish_connect(*c, poll_write);
}

void loop_impl::finish_connect(conn& c, std::uint32_t flags) {
  std::error_code ec = sys::socket_error(c.fd_);
  if (!ec && (flags & poll_error)) ec = errno_code(ECONNREFUSED);
  if (ec) {
    close(c, ec);
    return;
  }
  if (!(flags & (poll_write | poll_hangup))) {  // not yet
    if (ring_) arm_pollout(c);
    return;
  }
  // Level-triggered: from writability to input. Checked while still connecting, so a failure
  // reaches the dial's on_error (found by the fault sweep: ignored, the connection never read).
  if (!edge()) {
    if (auto err = poller_.modify(c.fd_, poll_read, false, &c)) return close(c, err);
  }
  if (c.has_transport()) return finish_connect_transport(c, flags);
  int family = c.ds_->family;
  dialer::connect_handler on_connect = std::move(c.ds_->on_connect);
  delete c.ds_;
  c.wq_ = nullptr;
  c.flags_ = clear(c.flags_, conn::f_connecting | conn::f_write_deadline);
  const conn_class& cls = *c.cls_;
  sys::apply_conn_options(c.fd_, family, cls.opts);
  dialed_.add(1);
  online_.add(1);
  c.last_active_ = now_;
  if (cls.read_timeout_ms) {
    c.read_deadline_ = now_ + cls.read_timeout_ms;
    c.flags_ |= conn::f_read_deadline;
  }
  wheel_.cancel(c.timer_);
  arm_timer(c);
  c.flags_ |= conn::f_opened;
  if (on_connect) on_connect(c);
  // on_connect may have closed the connection (on_close still follows) or rebound it (the new
  // handler's on_open ran then).
  if (cls.on_open && c.is_open() && c.cls_ == &cls) cls.on_open(cls.handler, c);
  if (ring_) {
    if (c.is_open()) do_read(c);  // arms the receive
  } else if (c.is_open() && (flags & (poll_read | poll_hangup))) {
    c.flags_ |= conn::f_read_ready;
    if (flags & poll_hangup) c.flags_ |= conn::f_peer_hup;
    do_read(c);
  }
}

// --- events ---------------------------------------------------------------------------------

void loop_impl::on_conn_event(conn& c, std::uint32_t flags) {
  if (c.flags_ & conn::f_closing) return;  // closed earlier in this turn: a stale event
  if (c.flags_ & conn::f_connecting) {
    finish_connect(c, flags);
    return;
  }
  if (flags & poll_error) {
    // A reset or another socket error: epoll reports it whatever the interest, so it must end
    // the connection now (after EOF and while paused too), or level-triggered mode would spin.
    std::error_code ec = sys::socket_error(c.fd_);
    if (ec) return close(c, ec);
  }
  if ((flags & poll_write) && c.wq_) flush(c);
  if ((flags & (poll_read | poll_hangup | poll_error)) && c.is_open()) {
    c.flags_ |= conn::f_read_ready;
    if (flags & poll_hangup) c.flags_ |= conn::f_peer_hup;
    do_read(c);
  }
  // Both directions are finished (the peer's FIN came and our side is shut): nothing can move
  // any more, and EPOLLHUP would be reported on every wait.
  if ((flags & poll_hangup) && c.is_open() && (c.flags_ & conn::f_write_shut) &&
      ((c.flags_ & conn::f_eof) || (c.flags_ & conn::f_read_paused)))
    close(c, errc::eof);
}

void loop_impl::do_read(conn& c) {
  constexpr std::uint16_t stop_bits =
      conn::f_closing | conn::f_read_paused | conn::f_eof | conn::f_close_after_flush;
  if (c.flags_ & stop_bits) return;  // f_read_ready stays set: resume_read() picks it up
  if (ring_) return deliver_held(c);
  const bool tls = c.has_transport();
  if (tls) {
    if (transport_glue::replay(c) && (c.flags_ & stop_bits)) return;
    if (!(c.flags_ & conn::f_opened)) {
      if (handshake_budget_ == 0) return defer_read(c);  // this turn's handshakes are spent
      --handshake_budget_;
    }
  }
  const unsigned budget = eng_.config().reads_per_turn;
  for (unsigned i = 0; i < budget; ++i) {
    std::error_code ec;
    ssize_t n = sys::recv(c.fd_, rbuf_.get(), rbuf_size_, ec);
    if (n > 0) {
      received(c, {rbuf_.get(), static_cast<std::size_t>(n)});
      if (c.flags_ & stop_bits) return;
      // A short read drained the socket: the next byte brings a new edge. Not so for a FIN
      // that came with the data (RDHUP seen): read on to the end of stream.
      if (static_cast<std::size_t>(n) < rbuf_size_ && !(c.flags_ & conn::f_peer_hup)) {
        c.flags_ = clear(c.flags_, conn::f_read_ready);
        return;
      }
      continue;
    }
    c.flags_ = clear(c.flags_, conn::f_read_ready);
    if (n == 0) {
      on_eof(c);
    } else if (!sys::would_block(ec)) {
      close(c, ec);
    }
    return;
  }
  // Budget spent with data left: finish next turn, after the other connections had theirs.
  defer_read(c);
}

void loop_impl::defer_read(conn& c) {
  // Level-triggered: the unread bytes are reported again by the next wait.
  if (edge() && !(c.flags_ & conn::f_in_ready_list)) {
    c.flags_ |= conn::f_in_ready_list;
    ready_.push_back(&c);
  }
}

void loop_impl::on_eof(conn& c) {
  c.flags_ |= conn::f_eof;
  if (!edge()) set_write_interest(c, c.wq_ != nullptr);  // stop polling for input
  if (c.cls_->on_end) {
    c.cls_->on_end(c.cls_->handler, c);
    return;
  }
  close_after_flush(c, errc::eof);
}

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
  if (ring_) {
    // io_uring: queued, and sent with the turn's other writes in one submission.
    if (queued + data.size() > o.max_write_queue) {
      close(c, errc::write_queue_overflow);
      return errc::write_queue_overflow;
    }
    if (!c.wq_ && !start_queue(c)) return out_of_memory(c);
    if (!writes_.append(*c.wq_, data)) return out_of_memory(c);
    list_send(c);
    return check_budget(c);
  }
  if (!c.wq_) {
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
  if (ring_) {
    discard_queue(victim);
  } else {
    writes_.release(q);
    victim.wq_ = nullptr;
  }
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
    const conn_class& cls = *c.cls_;
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
    if (c.has_transport()) transport_glue::release(c, reason);
    if (cls.destroy_data) cls.destroy_data(data_of(c));
    // Still on the ready list: run_ready skips an entry whose flag is clear (a freed slot, or one
    // reused by a connection that is not on the list itself).
    c.flags_ = clear(c.flags_, conn::f_in_ready_list);
    if (ring_ && !(c.flags_ & conn::f_blocking)) release_ring_ops(c);
    if (c.wq_) writes_.release(c.wq_);
    c.wq_ = nullptr;
    wheel_.cancel(c.timer_);  // the free list reuses the timer's links
    sys::close(c.fd_);        // also removes it from epoll (we never dup sockets)
    c.gen_.store(c.gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    conn_pool::pool_of(&c).free(&c);
  }
  closing_.clear();
}

// --- flow control and deadlines -------------------------------------------------------------

void loop_impl::pause_read(conn& c) {
  if (c.flags_ & (conn::f_closing | conn::f_read_paused)) return;
  c.flags_ |= conn::f_read_paused;
  if (ring_)
    cancel_recv(c);  // what arrives before the cancellation is held for resume_read
  else if (!edge())
    set_write_interest(c, c.wq_ != nullptr);
}

void loop_impl::resume_read(conn& c) {
  if (!(c.flags_ & conn::f_read_paused) || (c.flags_ & conn::f_closing)) return;
  c.flags_ = clear(c.flags_, conn::f_read_paused);
  // Input a transport kept from before the pause is not on the socket: no event will say so
  // (in either trigger mode), so the connection reads on the next turn.
  if (c.has_transport() && transport_glue::has_kept_input(c)) c.flags_ |= conn::f_read_ready;
  if (ring_) c.flags_ |= conn::f_read_ready;  // held input, and the receive to arm again
  if (!edge()) {
    set_write_interest(c, c.wq_ != nullptr);
    if ((c.flags_ & conn::f_read_ready) && !(c.flags_ & conn::f_in_ready_list) &&
        c.has_transport()) {
      c.flags_ |= conn::f_in_ready_list;
      ready_.push_back(&c);
    }
    return;
  }
  // Edges that arrived while paused were consumed unread: read on the next turn.
  if ((c.flags_ & conn::f_read_ready) && !(c.flags_ & conn::f_in_ready_list)) {
    c.flags_ |= conn::f_in_ready_list;
    ready_.push_back(&c);
  }
}

// conn::rebind: the read and idle deadlines start again under the new handler's options (the
// write deadline of a pending queue stands).
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
    c.flags_ = clear(c.flags_, conn::f_read_deadline);
    if (c.has_transport() && !(c.flags_ & conn::f_opened)) return close(c, errc::handshake_timeout);
    const conn_class& cls = *c.cls_;
    if (!cls.on_read_timeout || !cls.on_read_timeout(cls.handler, c))
      return close(c, errc::read_timeout);
    if (!c.is_open()) return;
  }
  if ((c.flags_ & conn::f_write_deadline) && due(c.write_deadline_, now_)) {
    if (c.wq_) return close(c, errc::write_timeout);
    c.flags_ = clear(c.flags_, conn::f_write_deadline);  // nothing was pending
  }
  if (c.cls_->idle_timeout_ms && due(c.last_active_ + c.cls_->idle_timeout_ms, now_)) {
    // An idle connection ends cleanly: a TLS peer gets close_notify (best effort).
    if (c.has_transport()) transport_glue::close_notify(c, true);
    return close(c, errc::idle_timeout);
  }
  arm_timer(c);
}

// --- handles --------------------------------------------------------------------------------

void loop_impl::run_on(conn* c, std::uint32_t gen, std::function<void(conn&)> fn) {
  if (c->gen_.load(std::memory_order_relaxed) != gen || c->fd_ < 0) return;
  if (!blocking_.empty() && blocking_.contains(c)) {
    blocking_runner::hand_over(*c, std::move(fn));
    return;
  }
  if (c->is_open()) fn(*c);
}

std::size_t loop_impl::queued_handle(conn* c, std::uint32_t gen) {
  if (c->gen_.load(std::memory_order_relaxed) != gen || c->fd_ < 0) return 0;
  if (!blocking_.empty() && blocking_.contains(c))
    return c->bs_->handed.load(std::memory_order_relaxed);
  return c->wq_ ? c->wq_->bytes : 0;
}

std::error_code loop_impl::write_handle(conn* c, std::uint32_t gen, std::string_view data) {
  if (c->gen_.load(std::memory_order_relaxed) != gen || c->fd_ < 0) return errc::not_connected;
  if (!blocking_.empty() && blocking_.contains(c)) {
    // The thread may be blocked writing to a peer that does not read: bound what waits for it
    // as a loop bounds a write queue (reject, or close the connection).
    blocking_state& bs = *c->bs_;
    const std::size_t n = data.size();
    if (bs.handed.fetch_add(n, std::memory_order_relaxed) + n > bs.max_queue) {
      bs.handed.fetch_sub(n, std::memory_order_relaxed);
      if (!bs.reject) blocking_runner::request_overflow_close(*c);
      return errc::write_queue_overflow;
    }
    blocking_runner::hand_over(*c, [copy = std::string(data)](conn& bc) {
      bc.write(copy);
      bc.bs_->handed.fetch_sub(copy.size(), std::memory_order_relaxed);
    });
    return {};
  }
  if (!c->is_open()) return errc::not_connected;
  return c->write(data);
}

}  // namespace detail
}  // namespace nbio
