// Private. Handles: generation-checked references usable from any thread.
#include "nbio/engine/conn_handle.hpp"

#include "engine/blocking_runner.hpp"
#include "engine/blocking_state.hpp"
#include "engine/engine_impl.hpp"

namespace nbio {

using detail::loop_impl;

bool conn_handle::alive() const noexcept {
  // The generation changes before the slot is freed: no need (and no right) to read fd_ here.
  return c_ && c_->gen_.load(std::memory_order_acquire) == gen_;
}

conn* conn_handle::get() const noexcept {
  if (!c_ || c_->gen_.load(std::memory_order_acquire) != gen_) return nullptr;
  loop_impl& loop = loop_impl::of(*c_);
  if (!loop.in_loop_thread()) return nullptr;
  // A blocking-mode connection's fields belong to its own thread: ask the loop's set (touched
  // on the loop thread only) before reading any of them. The others cannot change under us here.
  if (!loop.blocking_empty() && loop.serves_blocking(c_)) return nullptr;
  if (c_->fd_ < 0 || !c_->is_open()) return nullptr;
  return c_;
}

std::error_code conn_handle::dispatch(std::function<void(conn&)> fn) const {
  // The slot's memory outlives every connection in it (slabs are kept until the engine goes),
  // so reading the generation is safe even when the connection is long gone.
  if (!c_ || c_->gen_.load(std::memory_order_acquire) != gen_) return errc::not_connected;
  loop_impl& loop = loop_impl::of(*c_);
  if (loop.in_loop_thread()) {
    // On the owning loop thread the slot cannot change under us: act now, in call order.
    loop.run_on(c_, gen_, std::move(fn));
    return {};
  }
  loop.post([&loop, c = c_, gen = gen_, fn = std::move(fn)]() mutable {
    loop.run_on(c, gen, std::move(fn));
  });
  return {};
}

std::error_code conn_handle::post(std::function<void(conn&)> fn) const {
  if (!c_ || c_->gen_.load(std::memory_order_acquire) != gen_) return errc::not_connected;
  loop_impl& loop = loop_impl::of(*c_);
  loop.post([&loop, c = c_, gen = gen_, fn = std::move(fn)]() mutable {
    loop.run_on(c, gen, std::move(fn));
  });
  return {};
}

std::error_code conn_handle::write(std::string_view data) const {
  if (!c_ || c_->gen_.load(std::memory_order_acquire) != gen_) return errc::not_connected;
  loop_impl& loop = loop_impl::of(*c_);
  // On the owning loop thread: write now, without a copy.
  if (loop.in_loop_thread()) return loop.write_handle(c_, gen_, data);
  // Elsewhere: one task holding the copy (two allocations: the task and the bytes).
  loop.post(
      [&loop, c = c_, gen = gen_, copy = std::string(data)] { loop.write_handle(c, gen, copy); });
  return {};
}

std::size_t conn_handle::queued_bytes() const noexcept {
  if (!c_ || c_->gen_.load(std::memory_order_acquire) != gen_) return 0;
  loop_impl& loop = loop_impl::of(*c_);
  return loop.in_loop_thread() ? loop.queued_handle(c_, gen_) : 0;
}

std::error_code conn_handle::close() const {
  return dispatch([](conn& c) { c.close(); });
}

std::error_code conn_handle::close_after_flush() const {
  return dispatch([](conn& c) { c.close_after_flush(); });
}

}  // namespace nbio

namespace nbio::detail {

// --- the loop's side of handles ---------------------------------------------------------------

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

}  // namespace nbio::detail
