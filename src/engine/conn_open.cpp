// Private. Opening connections: slots from the loop's pools, adopting an accepted socket (or
// handing it to a blocking-mode thread), dialing and its completion. loop_impl members, on the
// loop thread (conn_core.hpp lists the other parts).
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

// --- allocation and open --------------------------------------------------------------------

conn_pool& loop_impl::pool_for(std::uint32_t slot_size) {
  for (auto& p : pools_)
    if (p->slot_size() == slot_size) return *p;
  return *pools_.emplace_back(std::make_unique<conn_pool>(*this, slot_size));
}

conn* loop_impl::allocate(const handler_table& cls) {
  const std::size_t data = std::size_t{cls.slot_bytes()} + (cls.tls ? transport_slot_size : 0);
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
    transport_conn::slot(*c) = transport_slot{};
  }
  return c;
}

conn* loop_impl::adopt(int fd, const handler_table& cls, listener_impl* owner) {
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
    transport_conn::open(*c, cls, true, {});
    return c;
  }
  c->flags_ |= conn::f_opened;
  if (cls.on_open) cls.on_open(cls.handler, *c);
  if (draining_ && c->is_open()) finish_for_shutdown(*c);  // handed out after the drain began
  return c;
}

// --- dialing --------------------------------------------------------------------------------

void loop_impl::start_dial(const address& remote, const address& local, const handler_table& cls,
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
  const handler_table& cls = *c.cls_;
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
  read_after_connect(c, flags);
}

void loop_impl::read_after_connect(conn& c, std::uint32_t flags) {
  if (!c.is_open()) return;
  if (ring_) return do_read(c);  // arms the receive
  if (!(flags & (poll_read | poll_hangup))) return;
  c.flags_ |= conn::f_read_ready;
  if (flags & poll_hangup) c.flags_ |= conn::f_peer_hup;
  do_read(c);
}

}  // namespace nbio::detail
