// Private. The engine's side of a transport (TLS): where its per-connection state lives, how
// its input reaches the handler and its output reaches the socket, in both I/O paths.
#include "engine/transport_glue.hpp"

#include <atomic>
#include <string>

#include "engine/blocking_runner.hpp"
#include "engine/dialer_impl.hpp"
#include "engine/engine_impl.hpp"

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

transport_slot& transport_glue::slot(conn& c) noexcept {
  auto* end = reinterpret_cast<char*>(&c) + conn_pool::pool_of(&c).slot_size();
  return *reinterpret_cast<transport_slot*>(end - transport_slot_size);
}

std::error_code transport_glue::raw_write(conn& c, std::string_view bytes) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::write(c, bytes);
  return loop_impl::of(c).raw_write(c, bytes);
}

void transport_glue::established(conn& c) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::established(c);
  loop_impl::of(c).established(c);
}

void transport_glue::deliver(conn& c, std::string_view plain) {
  const conn_class& cls = *c.cls_;
  if (cls.on_data) cls.on_data(cls.handler, c, plain);
}

void transport_glue::end_of_stream(conn& c) {
  if (c.flags_ & conn::f_blocking) return blocking_runner::end_of_stream(c);
  loop_impl::of(c).on_eof(c);
}

bool transport_glue::stopped_reading(const conn& c) noexcept {
  return (c.flags_ &
          (conn::f_closing | conn::f_read_paused | conn::f_eof | conn::f_close_after_flush)) != 0;
}

void transport_glue::fail(conn& c, std::error_code ec) {
  c.close(ec);
}

std::error_code transport_glue::write(conn& c, std::string_view plain) {
  if (c.flags_ & (conn::f_closing | conn::f_close_after_flush | conn::f_write_shut |
                  conn::f_shutdown_pending | conn::f_connecting))
    return errc::not_connected;
  if (!(c.flags_ & conn::f_opened)) return errc::not_connected;  // still in the handshake
  if (plain.empty()) return {};
  const conn_options& o = c.cls_->opts;
  if (o.on_overflow == overflow_policy::reject && !(c.flags_ & conn::f_blocking) &&
      c.queued_bytes() + plain.size() > o.max_write_queue)
    return errc::write_queue_overflow;  // rejected whole, before any byte is sent
  return transport_hooks().write(c, slot(c).state, plain);
}

void transport_glue::feed(conn& c, std::string_view bytes) {
  transport_slot& s = slot(c);
  std::size_t used = transport_hooks().input(c, s.state, bytes);
  if (used >= bytes.size() || (c.flags_ & conn::f_closing)) return;
  // The handler stopped reading with bytes of this read left: keep them for resume_read().
  // Rare (a pause mid-batch), so a heap string; the slot is back to null once replayed.
  auto* kept = static_cast<std::string*>(s.aux);
  if (!kept) s.aux = kept = new std::string;
  kept->append(bytes.substr(used));
}

bool transport_glue::replay(conn& c) {
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

void transport_glue::close_notify(conn& c, bool best_effort) {
  if (!(c.flags_ & conn::f_opened)) return;
  transport_hooks().close_notify(c, slot(c).state, best_effort);
}

void transport_glue::release(conn& c, std::error_code reason) {
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

}  // namespace nbio::detail
