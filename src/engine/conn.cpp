// Private. conn's public functions: they forward to the loop (loop_impl, the conn_*.cpp files;
// conn_core.hpp lists them) or, for a blocking-mode connection, to its thread (blocking_runner).
#include "nbio/engine/conn.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "engine/blocking_runner.hpp"
#include "engine/blocking_state.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_conn.hpp"
#include "sys/socket.hpp"

namespace nbio {

using detail::blocking_runner;
using detail::loop_impl;
using detail::transport_conn;

std::error_code conn::write(std::string_view data) {
  if (has_transport()) return transport_conn::write(*this, data);
  if (flags_ & f_blocking) return blocking_runner::write(*this, data);
  return loop_impl::of(*this).write(*this, data);
}

std::error_code conn::send_file(int fd, std::uint64_t offset, std::uint64_t length) {
  if (flags_ & f_blocking) return blocking_runner::send_file(*this, fd, offset, length);
  return loop_impl::of(*this).send_file(*this, fd, offset, length);
}

void conn::close(std::error_code reason) {
  // The handler ends the stream: tell a TLS peer so (best effort: what is queued is dropped).
  if (has_transport() && is_open()) transport_conn::close_notify(*this, true);
  if (flags_ & f_blocking) return blocking_runner::close(*this, reason);
  loop_impl::of(*this).close(*this, reason);
}

void conn::close_after_flush() {
  if (has_transport() && is_open() && !(flags_ & f_close_after_flush))
    transport_conn::close_notify(*this, (flags_ & f_blocking) != 0);
  if (flags_ & f_blocking) return blocking_runner::close(*this, errc::local_close);
  loop_impl::of(*this).close_after_flush(*this, errc::local_close);
}

void conn::shutdown_write() {
  if (has_transport() && is_open() && !(flags_ & (f_write_shut | f_shutdown_pending)))
    transport_conn::close_notify(*this, false);
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

std::error_code conn::rebind_with(const upgrade_target& to, std::string_view already_read,
                                  void (*init)(conn&, void*), void* init_arg) {
  if (flags_ & f_closing) return errc::not_connected;
  const detail::handler_table& next = to.cls();
  if (next.slot_bytes() > data_capacity()) return errc::slot_too_small;
  const detail::handler_table& prev = *cls_;
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

}  // namespace nbio
