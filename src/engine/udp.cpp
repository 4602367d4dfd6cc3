// Private. UDP sockets on the loops and their per-peer virtual connections.
#include "engine/udp_impl.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <utility>

#include "engine/loop_impl.hpp"
#include "sys/socket.hpp"

namespace nbio {

using detail::udp_impl;

std::error_code udp_socket::send_to(const address& to, std::string_view payload) {
  return udp_impl::of(*this).send(to, payload);
}
const address& udp_socket::local_address() const noexcept {
  return static_cast<const udp_impl*>(this)->local();
}
loop& udp_socket::owner_loop() const noexcept {
  return static_cast<const udp_impl*>(this)->loop();
}
std::uint64_t udp_socket::dropped() const noexcept {
  return static_cast<const udp_impl*>(this)->dropped_count();
}

std::error_code udp_peer::write(std::string_view payload) {
  return udp_impl::of(*socket_).send(remote_, payload);
}
void udp_peer::close() {
  udp_impl::of(*socket_).close_peer(*this, errc::local_close);
}

namespace detail {

static bool due(std::uint32_t deadline, std::uint32_t now) noexcept {
  return static_cast<std::int32_t>(deadline - now) <= 0;
}

udp_impl::~udp_impl() {
  close_all();
}

void udp_impl::close_all() {
  // Peers already closed but not yet reaped: finish them now, the loop is going away.
  for (udp_peer* p : std::exchange(closing_, {})) {
    loop_.wheel().cancel(p->timer_);
    if (cls_->on_close) cls_->on_close(cls_->handler, *p, p->cause_);
    destroy_peer(p);
  }
  for (auto it = peers_.begin(); it != peers_.end(); it = peers_.begin()) {
    udp_peer* p = it->second;
    peers_.erase(it);
    loop_.wheel().cancel(p->timer_);
    if (cls_->on_close) cls_->on_close(cls_->handler, *p, errc::shutdown);
    destroy_peer(p);
  }
  if (fd_ >= 0) {
    sys::close(fd_);  // also leaves the poller
    fd_ = -1;
  }
}

std::error_code udp_impl::send(const address& to, std::string_view payload) {
  if (fd_ < 0) return errc::not_connected;
  ssize_t n;
  do
    n = ::sendto(fd_, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL, to.data(),
                 to.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return sys::last_error();
  loop_.count_out(static_cast<std::size_t>(n));
  return {};
}

void udp_impl::on_readable() {
  // Up to 64 datagrams per readiness, so a flood on one socket cannot starve the loop.
  for (int i = 0; i < 64 && fd_ >= 0; ++i) {
    address from;
    socklen_t len = address::capacity();
    ssize_t n = ::recvfrom(fd_, loop_.read_buffer(), loop_.read_buffer_size(), MSG_DONTWAIT,
                           from.data(), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // EINTR, or an ICMP error queued for an earlier send: keep reading
    }
    from.set_size(len);
    loop_.count_in(static_cast<std::size_t>(n));
    std::string_view payload(loop_.read_buffer(), static_cast<std::size_t>(n));
    if (!peers_mode_) {
      if (cls_->on_datagram) cls_->on_datagram(cls_->handler, *this, payload, from);
      continue;
    }
    udp_peer* p;
    auto it = peers_.find(from);
    if (it != peers_.end()) {
      p = it->second;
    } else {
      if (peers_.size() >= cls_->opts.max_peers) {
        ++dropped_;
        continue;
      }
      p = open_peer(from);
      if (!p) continue;
    }
    p->last_active_ = loop_.now();
    if (cls_->on_data) cls_->on_data(cls_->handler, *p, payload);
  }
}

udp_peer* udp_impl::open_peer(const address& from) {
  std::size_t size = udp_peer::data_offset() + cls_->data_size;
  void* mem = ::operator new (size, std::align_val_t{16});
  auto* p = ::new (mem) udp_peer();
  p->timer_.tag = timer_udp_peer;
  p->socket_ = this;
  p->remote_ = from;
  p->last_active_ = loop_.now();
  if (cls_->construct_data) cls_->construct_data(static_cast<char*>(mem) + udp_peer::data_offset());
  peers_.emplace(from, p);
  std::uint32_t idle = timer_wheel::clamp_delay(cls_->opts.idle_timeout.count());
  if (idle) loop_.wheel().schedule(p->timer_, loop_.now() + idle);
  if (cls_->on_open) cls_->on_open(cls_->handler, *p);
  return p->closing_ ? nullptr : p;
}

void udp_impl::on_peer_timer(udp_peer& p) {
  if (p.closing_) {
    // close() was asked earlier: deliver on_close now, outside that peer's handlers.
    std::erase(closing_, &p);
    if (cls_->on_close) cls_->on_close(cls_->handler, p, p.cause_);
    destroy_peer(&p);
    return;
  }
  std::uint32_t idle = timer_wheel::clamp_delay(cls_->opts.idle_timeout.count());
  std::uint32_t deadline = p.last_active_ + idle;
  if (due(deadline, loop_.now())) {
    close_peer(p, errc::peer_expired);
    return;
  }
  loop_.wheel().schedule(p.timer_, deadline);  // it was active since: check again then
}

void udp_impl::close_peer(udp_peer& p, std::error_code reason) {
  if (p.closing_) return;
  p.closing_ = true;
  p.cause_ = reason;
  peers_.erase(p.remote_);  // a new datagram from this address opens a new peer
  closing_.push_back(&p);
  loop_.wheel().schedule(p.timer_, loop_.now());  // due: reaped on the next wheel advance
}

void udp_impl::destroy_peer(udp_peer* p) {
  if (cls_->destroy_data) cls_->destroy_data(reinterpret_cast<char*>(p) + udp_peer::data_offset());
  p->~udp_peer();
  ::operator delete (p, std::align_val_t{16});
}

}  // namespace detail
}  // namespace nbio
