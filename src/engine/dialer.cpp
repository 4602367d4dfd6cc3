// Private. Dialing: numeric addresses straight to a loop, names through the resolver thread.
#include "engine/dialer_impl.hpp"

#include "engine/engine_impl.hpp"

namespace nbio {

void dialer::dial(std::string_view remote, error_handler on_error, std::string_view local,
                  int loop_index) {
  static_cast<detail::dialer_impl*>(this)->dial(remote, {}, std::move(on_error), local, loop_index);
}

void dialer::dial(std::string_view remote, connect_handler on_connect, error_handler on_error,
                  std::string_view local, int loop_index) {
  static_cast<detail::dialer_impl*>(this)->dial(remote, std::move(on_connect), std::move(on_error),
                                                local, loop_index);
}

namespace detail {

void dialer_impl::dial(std::string_view remote, connect_handler on_connect, error_handler on_error,
                       std::string_view local, int loop_index) {
  std::size_t n = eng_.loop_count();
  std::size_t index = loop_index >= 0 ? static_cast<std::size_t>(loop_index) % n
                                      : rr_.fetch_add(1, std::memory_order_relaxed) % n;
  loop_impl& loop = eng_.loop_at(index);

  // std::function needs copyable captures, hence a shared_ptr until the loop takes over.
  auto ds = std::make_shared<dial_state>(
      dial_state{std::move(on_error), std::move(on_connect), std::string(remote),
                 timer_wheel::clamp_delay(options_.connect_timeout.count()), 0});
  auto fail = [&loop, ds](std::error_code ec) {
    loop.post([ds, ec] {
      if (ds->on_error) ds->on_error(ec, ds->remote);
    });
  };

  address source;
  if (!local.empty()) {
    auto parsed = address::parse(local);
    if (!parsed) return fail(std::make_error_code(std::errc::invalid_argument));
    source = *parsed;
  }
  const handler_table* cls = cls_.get();
  if (auto target = address::parse(remote)) {
    loop.post([&loop, ds, target = *target, source, cls] {
      loop.start_dial(target, source, *cls, std::move(*ds));
    });
    return;
  }
  std::string host;
  std::uint16_t port = 0;
  if (!address::split_host_port(remote, host, port)) return fail(errc::resolve_failed);
  eng_.names().resolve(std::move(host), port,
                       [&loop, ds, source, cls](std::error_code ec, address resolved) {
                         loop.post([&loop, ds, ec, resolved, source, cls] {
                           if (ec) {
                             if (ds->on_error) ds->on_error(ec, ds->remote);
                             return;
                           }
                           loop.start_dial(resolved, source, *cls, std::move(*ds));
                         });
                       });
}

}  // namespace detail
}  // namespace nbio
