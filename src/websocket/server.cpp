// Private. The WebSocket server endpoint: the HTTP route that checks a handshake, answers 101 and
// hands the connection to the session handler (session.cpp).
#include "nbio/websocket/server.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <vector>

#include "nbio/http/request.hpp"
#include "nbio/websocket/handshake.hpp"
#include "websocket/session.hpp"

namespace nbio::websocket {

// What a server's connections share (the session part), and its options.
struct server::shared : detail::session_shared {
  endpoint_options options;
};

server::server(nbio::engine& eng, std::unique_ptr<detail::callbacks> cb, endpoint_options options)
    : shared_(std::make_shared<shared>()) {
  shared_->cb = std::move(cb);
  shared_->options = std::move(options);
  shared_->protocols = split_list(shared_->options.subprotocols);
  if (shared_->protocols.size() > 254) shared_->protocols.resize(254);  // indexed by a byte
  nbio::conn_options co;
  co.idle_timeout = shared_->options.idle_timeout;
  co.read_timeout = shared_->options.ping_interval;  // the keepalive's silence (0: off)
  co.max_write_queue = shared_->options.max_write_queue;
  shared_->close_timeout = shared_->options.close_timeout;
  shared_->pong_timeout = shared_->options.pong_timeout;
  shared_->limits = shared_->options.limits;
  shared_->deflate = shared_->options.deflate;
  shared_->budget.limit = shared_->options.max_buffered_bytes;
  target_ = &detail::make_session_target(eng, shared_, co);
}

const endpoint_options& server::options() const noexcept {
  return shared_->options;
}

server_stats server::stats() const noexcept {
  server_stats out;
  out.buffered_bytes = shared_->budget.held.load(std::memory_order_relaxed);
  out.buffering_connections = shared_->budget.holders.load(std::memory_order_relaxed);
  out.budget_evictions = shared_->budget.evictions.load(std::memory_order_relaxed);
  return out;
}

http::handler server::upgrade() {
  const std::uint32_t slot = shared_->cb->slot_bytes;
  return http::handler(
      [this](http::response_writer& w, http::request& r) {
        const upgrade_check check = check_upgrade(r);
        auto refuse = [&w](int status, std::string_view why) {
          if (status == 426) w.set_header("Sec-WebSocket-Version", "13");
          w.write_header(status);
          w.write(why);
          w.write("\n");
        };
        if (check.status != 0) return refuse(check.status, check.reason);
        const endpoint_options& o = options();
        if (o.check_origin && !o.check_origin(r.header("Origin")))
          return refuse(403, "origin not allowed");
        std::string answer =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: ";
        answer += accept_key(check.key);
        answer += "\r\n";
        std::uint8_t protocol = 0;
        const std::string_view chosen = choose_protocol(check.protocols, options().subprotocols);
        for (std::size_t i = 0; i < shared_->protocols.size() && !chosen.empty(); ++i) {
          if (shared_->protocols[i] != chosen) continue;
          protocol = static_cast<std::uint8_t>(i + 1);
          answer += "Sec-WebSocket-Protocol: ";
          answer += chosen;
          answer += "\r\n";
          break;
        }
        const std::string offers = joined_fields(r.headers(), "Sec-WebSocket-Extensions");
        deflate_params dp;
        std::string extension;
        const bool keep = detail::may_keep_context(*shared_);
        const bool deflate =
            !offers.empty() && negotiate_deflate(offers, o.deflate, keep, dp, extension);
        if (deflate) {
          answer += "Sec-WebSocket-Extensions: ";
          answer += extension;
          answer += "\r\n";
        }
        answer += "\r\n";
        const frame_limits limits = o.limits;
        w.hijack(*target_, [answer = std::move(answer), limits, protocol, deflate, dp,
                            s = shared_.get()](nbio::conn& c) {
          c.write(answer);
          detail::ws_state& st = detail::state(c);
          st.parser = frame_parser(role::server, limits, deflate);
          st.protocol = protocol;
          if (deflate && detail::init_deflate(st, dp) &&
              s->deflate.memory == deflate_memory::sliding) {
            st.z |= detail::z_counted;
            s->dedicated.fetch_add(1, std::memory_order_relaxed);
          }
        });
      },
      slot);
}

}  // namespace nbio::websocket
