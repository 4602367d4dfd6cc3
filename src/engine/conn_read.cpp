// Private. Reading: readiness events (epoll), reads into the loop's buffer, the end of the
// stream, pausing and resuming. loop_impl members, on the loop thread. The bytes themselves go
// through conn_core::received, the same path for io_uring (loop_uring.cpp) and blocking mode.
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
    if (transport_conn::replay(c) && (c.flags_ & stop_bits)) return;
    if (!(c.flags_ & conn::f_opened)) {
      if (handshake_budget_ == 0) return defer_read(c);  // this turn's handshakes are spent
      --handshake_budget_;
    }
  }
  const unsigned budget = eng_.options().reads_per_turn;
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
  // A TLS peer hears that our side ends too (RFC 8446 §6.1: close_notify before closing the
  // write side), after what is queued; with nothing queued straight to the socket, errors
  // ignored (a peer that reset keeps the end of stream as the cause).
  if (c.has_transport() && (c.flags_ & conn::f_opened))
    transport_conn::close_notify(c, c.queued_bytes() == 0);
  close_after_flush(c, errc::eof);
}

// --- flow control ---------------------------------------------------------------------------

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
  if (c.has_transport() && transport_conn::has_kept_input(c)) c.flags_ |= conn::f_read_ready;
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

}  // namespace nbio::detail
