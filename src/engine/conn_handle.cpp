// Private. Handles: generation-checked references usable from any thread.
#include "nbio/engine/conn_handle.hpp"

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
