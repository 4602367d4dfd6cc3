// Private. The engine's side of a transport (TLS): where its per-connection state lives, how
// its input reaches the handler and its output reaches the socket, in both I/O paths.
#include "engine/transport_conn.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "engine/blocking_runner.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/engine_impl.hpp"
#include "sys/socket.hpp"

namespace nbio::detail {

namespace {
std::atomic<const transport_ops*> registered{nullptr};
}

void set_transport_ops(const transport_ops* ops) noexcept {
  registered.store(ops, std::memory_order_release);
}

const transport_ops& transport_hooks() noexcept {
  return *registered.load(std::memory_order_acquire);
}

const std::error_category* transport_category() noexcept {
  const transport_ops* ops = registered.load(std::memory_order_acquire);
  return ops ? ops->category : nullptr;
}

transport_slot& transport_conn::slot(conn& c) noexcept {
  auto* end = reinterpret_cast<char*>(&c) + conn_pool::pool_of(&c).slot_size();
  return *reinterpret_cast<transport_slot*>(end - transport_slot_size);
}

std::error_code transport_conn::raw_write(conn& c, std::string_view bytes) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::write(c, bytes);
  return loop_impl::of(c).raw_write(c, bytes);
}

void transport_conn::established(conn& c) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::established(c);
  loop_impl::of(c).established(c);
}

void transport_conn::deliver(conn& c, std::string_view plain) {
  const handler_table& cls = *c.cls_;
  if (cls.on_data) cls.on_data(cls.handler, c, plain);
}

void transport_conn::end_of_stream(conn& c) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::end_of_stream(c);
  loop_impl::of(c).on_eof(c);
}

bool transport_conn::stopped_reading(const conn& c) noexcept {
  return (c.flags_ &
          (conn::f_closing | conn::f_read_paused | conn::f_eof | conn::f_close_after_flush)) != 0;
}

void transport_conn::fail(conn& c, std::error_code ec) {
  c.close(ec);
}

void transport_conn::fail_after_flush(conn& c, std::error_code ec) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::close(c, ec);  // written already
  loop_impl::of(c).close_after_flush(c, ec);
}

std::error_code transport_conn::write(conn& c, std::string_view plain) {
  if (c.flags_ & (conn::f_closing | conn::f_close_after_flush | conn::f_write_shut |
                  conn::f_shutdown_pending | conn::f_connecting))
    return errc::not_connected;
  if (!(c.flags_ & conn::f_opened)) return errc::not_connected;  // still in the handshake
  if (plain.empty()) return {};
  const conn_options& o = c.cls_->opts;
  if (o.on_overflow == overflow_policy::reject && !(c.flags_ & conn::f_blocking) &&
      c.queued_bytes() + transport_hooks().sealed_size(plain.size()) > o.max_write_queue)
    return errc::write_queue_overflow;  // rejected whole, before any byte is sealed or sent
  // Behind a queued file (or plaintext already waiting for it): sealed later, in order.
  if (!(c.flags_ & conn::f_blocking) && c.wq_ && write_pool::tail_deferred(*c.wq_))
    return loop_impl::of(c).write_deferred(c, plain);
  return transport_hooks().write(c, slot(c).state, plain);
}

void transport_conn::feed(conn& c, std::span<char> bytes) {
  transport_slot& s = slot(c);
  std::size_t used = transport_hooks().input(c, s.state, bytes);
  if (used >= bytes.size() || (c.flags_ & conn::f_closing)) return;
  // The handler stopped reading with bytes of this read left: keep them for resume_read().
  // Rare (a pause mid-batch), so a heap string; the slot is back to null once replayed.
  auto* kept = static_cast<std::string*>(s.aux);
  if (!kept) s.aux = kept = new std::string;
  kept->append(bytes.data() + used, bytes.size() - used);
}

bool transport_conn::has_kept_input(conn& c) {
  if (!(c.flags_ & conn::f_opened)) return false;
  transport_slot& s = slot(c);
  return s.aux != nullptr || transport_hooks().pending(s.state);
}

bool transport_conn::replay(conn& c) {
  transport_slot& s = slot(c);
  if (!(c.flags_ & conn::f_opened)) return false;
  auto* kept = static_cast<std::string*>(s.aux);
  const transport_ops& ops = transport_hooks();
  if (!kept) {
    if (!ops.pending(s.state)) return false;
    ops.input(c, s.state, {});  // the transport holds bytes it has not delivered yet
    return true;
  }
  s.aux = nullptr;
  std::string bytes = std::move(*kept);
  delete kept;
  feed(c, bytes);
  return true;
}

void transport_conn::close_notify(conn& c, bool best_effort) {
  if (!(c.flags_ & conn::f_opened)) return;
  if (!best_effort && !(c.flags_ & conn::f_blocking) && c.wq_ &&
      write_pool::tail_deferred(*c.wq_)) {
    loop_impl::of(c).write_close_mark(c);  // after the file or plaintext queued before it
    return;
  }
  transport_hooks().close_notify(c, slot(c).state, best_effort);
}

void transport_conn::sweep_later(conn& c) {
  loop_impl::of(c).transport_sweep_later();
}

void transport_conn::release(conn& c, std::error_code reason) {
  transport_slot& s = slot(c);
  if (!(c.flags_ & conn::f_opened)) {
    if (auto* ds = static_cast<dial_state*>(s.aux)) {
      if (ds->on_error) ds->on_error(reason, ds->remote);
      delete ds;
    }
  } else {
    delete static_cast<std::string*>(s.aux);
  }
  s.aux = nullptr;
  if (s.state) transport_hooks().free(s.state);
  s.state = nullptr;
  c.timer_.owner_u16 = static_cast<std::uint16_t>(c.timer_.owner_u16 & ~conn::t_transport);
}

// A transport connection's socket is connected: its handshake starts; the handler's on_open
// waits for it (transport_conn::established). False: it failed (the connection is closing).
bool transport_conn::open(conn& c, const handler_table& cls, bool server, std::string_view name) {
  std::error_code ec;
  transport_slot& s = transport_conn::slot(c);
  s.state = transport_hooks().open(*cls.tls, c, server, name, ec);
  if (ec) c.close(ec);
  return !ec;
}

// --- the loop's side -------------------------------------------------------------------------

void loop_impl::transport_sweep_later() {
  if (transport_sweep_armed_) return;
  transport_sweep_armed_ = true;
  add_timer(1000, 0, [this] {
    transport_sweep_armed_ = false;
    if (transport_hooks().sweep()) transport_sweep_later();
  });
}

void loop_impl::established(conn& c) {
  // The handshake finished while its last flight failed to go out (a TLS 1.3 server's session
  // tickets): the connection is closing and ends as a failed handshake (a dial's on_error), not
  // with an on_close whose on_open never ran (found by the fault sweep).
  if (!c.is_open()) return;
  c.flags_ |= conn::f_opened;
  rebound(c);  // the handler's read and idle deadlines replace the handshake's
  transport_slot& s = transport_conn::slot(c);
  auto* ds = static_cast<dial_state*>(s.aux);
  s.aux = nullptr;
  const handler_table& cls = *c.cls_;
  if (ds) {
    dialer::connect_handler on_connect = std::move(ds->on_connect);
    delete ds;
    if (on_connect) on_connect(c);
  }
  if (cls.on_open && c.is_open() && c.cls_ == &cls) cls.on_open(cls.handler, c);
  if (draining_ && c.is_open()) finish_for_shutdown(c);
}

// A TLS dial: connected, so the handshake starts; the dial's on_connect and the handler's
// on_open wait for it in the slot (transport_conn::established), and a failed handshake goes
// to the dial's on_error (transport_conn::release).
void loop_impl::finish_connect_transport(conn& c, std::uint32_t flags) {
  dial_state* ds = c.ds_;
  c.wq_ = nullptr;
  c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~(conn::f_connecting | conn::f_write_deadline));
  const handler_table& cls = *c.cls_;
  sys::apply_conn_options(c.fd_, ds->family, cls.opts);  // finish_connect switched the interest
  dialed_.add(1);
  online_.add(1);
  c.last_active_ = now_;
  wheel_.cancel(c.timer_);
  transport_conn::slot(c).aux = ds;
  if (!transport_conn::open(c, cls, false, ds->remote)) return;
  arm_timer(c);
  read_after_connect(c, flags);
}

// No sendfile through a transport: the file is read 16 KiB (one TLS record) at a time and its
// ciphertext put at the head of the queue, before whatever was queued after the file. So a file
// costs the queue one record of memory at a time, whatever its size. Writes made meanwhile wait
// behind it as plaintext (write_deferred) and are sealed when they reach the head: records must
// go out in the order they were sealed.
bool loop_impl::flush_file_transport(conn& c, file_segment& f) {
  char piece[16384];
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(f.remaining, sizeof piece));
  ssize_t n;
  do {
    n = ::pread(f.fd, piece, want, static_cast<off_t>(f.offset));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {  // 0: the file ended early; the peer was promised bytes it will not get
    close(c, n < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error));
    return false;
  }
  f.offset += static_cast<std::uint64_t>(n);
  f.remaining -= static_cast<std::uint64_t>(n);
  if (f.remaining == 0) writes_.pop_file(*c.wq_);
  return seal_at_head(c, {piece, static_cast<std::size_t>(n)});
}

bool loop_impl::flush_plain_transport(conn& c) {
  write_block* b = write_pool::head_plain(*c.wq_);
  if (b->begin == close_marker) {
    writes_.pop_head(*c.wq_);
    collecting_ = &c;
    transport_hooks().close_notify(c, transport_conn::slot(c).state, false);
    collecting_ = nullptr;
    const bool queued = writes_.prepend(*c.wq_, collected_);
    collected_.clear();
    if (!queued) out_of_memory(c);
    return queued;
  }
  char piece[write_block::capacity];
  const std::size_t n = b->end;
  std::memcpy(piece, b->data, n);
  writes_.pop_head(*c.wq_);
  return seal_at_head(c, {piece, n});
}

bool loop_impl::seal_at_head(conn& c, std::string_view bytes) {
  collecting_ = &c;
  std::error_code ec = transport_hooks().write(c, transport_conn::slot(c).state, bytes);
  collecting_ = nullptr;
  if (ec) {
    collected_.clear();
    close(c, ec);
    return false;
  }
  const bool queued = writes_.prepend(*c.wq_, collected_);
  collected_.clear();
  if (!queued) out_of_memory(c);
  return queued;
}

std::error_code loop_impl::write_deferred(conn& c, std::string_view plain) {
  if (c.wq_->bytes + plain.size() > c.cls_->opts.max_write_queue) {
    close(c, errc::write_queue_overflow);
    return errc::write_queue_overflow;
  }
  if (!writes_.append_plain(*c.wq_, plain)) return out_of_memory(c);
  return check_budget(c);
}

}  // namespace nbio::detail
