// Private. The WebSocket client: a dialer whose connections send the upgrade, check the answer
// with the HTTP response parser, then move onto the session handler (session.cpp).
#include "nbio/websocket/client.hpp"

#include <array>
#include <chrono>
#include <mutex>

#include "nbio/http/parser.hpp"
#include "nbio/tls/context.hpp"
#include "nbio/websocket/handshake.hpp"
#include "websocket/session.hpp"

namespace nbio::websocket {

struct client::shared : detail::session_shared {
  endpoint_options options;
  nbio::engine* eng = nullptr;
  nbio::dialer* dialer = nullptr;
  nbio::upgrade_target* session = nullptr;
  nbio::dial_options dial{};
  // wss://: made by the constructor when options.tls is set, else on the first wss:// connect
  // (a default context: the system's trust store, ALPN http/1.1).
  nbio::dialer* tls_dialer = nullptr;  // written once under tls_once
  std::error_code tls_error;           // why the default context could not be made
  std::once_flag tls_once;

  std::error_code tls_dialer_ready();
};

namespace {

// One connection's handshake, alive from the dial to the rebind (or the failure).
struct handshake {
  std::shared_ptr<client::shared> s;
  std::string request;
  std::string accept;       // the Sec-WebSocket-Accept we expect
  std::string buffer;       // the answer so far
  deflate_options deflate;  // what was offered (sliding: as dedicated or as shared)
  bool counted = false;     // sliding: counted in session_shared::dedicated from connect()
  ~handshake() {
    if (counted) s->dedicated.fetch_sub(1, std::memory_order_relaxed);
  }
  std::function<void(std::error_code)> on_error;
  std::chrono::steady_clock::time_point started{};  // the connection's open
  bool failed = false;
};

// The handler of a client connection until its handshake is done.
struct handshaking {
  struct conn_data {
    handshake* h = nullptr;
  };

  void on_open(nbio::conn& c) {
    handshake* h = c.data<conn_data>().h;
    h->started = std::chrono::steady_clock::now();
    c.set_read_deadline(h->s->options.handshake_timeout);
    c.write(h->request);
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    handshake* h = c.data<conn_data>().h;
    h->buffer.append(bytes);
    std::array<http::header, 64> fields;
    http::response_head head;
    http::response_parser parser(http::parser_limits{.max_header_bytes = 16 * 1024});
    const http::parse_result r = parser.parse(h->buffer, fields, head);
    if (r.status == http::parse_status::incomplete) {
      // Reads do not push the deadline back: it counts from the open.
      const auto left =
          h->s->options.handshake_timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - h->started);
      if (left <= std::chrono::milliseconds(0)) return fail(c, errc::handshake_timeout);
      c.set_read_deadline(left);
      return;
    }
    if (r.status == http::parse_status::error) return fail(c, r.error);
    if (head.status != 101) return fail(c, errc::handshake_status);
    if (!has_token(head.get("Upgrade"), "websocket") ||
        !has_token(head.get("Connection"), "upgrade"))
      return fail(c, errc::handshake_fields);
    if (head.get("Sec-WebSocket-Accept") != h->accept) return fail(c, errc::handshake_accept);
    deflate_params dp;
    std::error_code ec;
    const bool deflate =
        accept_deflate(joined_fields(head.headers, "Sec-WebSocket-Extensions"), h->deflate, dp, ec);
    if (ec) return fail(c, ec);
    const std::string_view protocol = head.get("Sec-WebSocket-Protocol");
    std::uint8_t index = 0;
    if (!protocol.empty()) {
      const auto& offered = h->s->protocols;
      for (std::size_t i = 0; i < offered.size(); ++i)
        if (offered[i] == protocol) index = static_cast<std::uint8_t>(i + 1);
      if (index == 0) return fail(c, errc::handshake_protocol);
    }
    // A WebSocket connection from here on: what followed the 101 is its first frames.
    std::unique_ptr<handshake> done(h);
    std::string rest = h->buffer.substr(r.consumed);
    const frame_limits limits = h->s->options.limits;
    ec = c.rebind(*h->s->session, rest, [&](nbio::conn& nc) {
      detail::ws_state& st = detail::state(nc);
      st.parser = frame_parser(role::client, limits, deflate);
      st.flags |= detail::f_client;
      st.protocol = index;
      // The count taken at connect() passes to the connection if it keeps a context.
      if (deflate && detail::init_deflate(st, dp) && done->counted) {
        st.z |= detail::z_counted;
        done->counted = false;
      }
    });
    if (ec) {
      c.data<conn_data>().h = nullptr;  // `done` frees it: on_close must not
      if (done->on_error) done->on_error(ec);
      c.close(ec);
    }
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    handshake* h = c.data<conn_data>().h;
    if (!h) return;
    c.data<conn_data>().h = nullptr;
    std::unique_ptr<handshake> gone(h);
    if (h->failed) return;  // reported already
    if (cause == nbio::errc::read_timeout) cause = errc::handshake_timeout;
    if (h->on_error) h->on_error(cause);
  }

 private:
  static void fail(nbio::conn& c, std::error_code ec) {
    handshake* h = c.data<conn_data>().h;
    h->failed = true;
    if (h->on_error) h->on_error(ec);
    c.close(ec);
  }
};

// Splits ws[s]://host[:port][/path][?query] into host:port (the port defaults to 80, 443 for
// wss), the authority as written (the Host field) and the target.
bool split_url(std::string_view url, std::string& host_port, std::string& host, std::string& target,
               bool& tls) {
  constexpr std::string_view ws = "ws://", wss = "wss://";
  tls = url.size() > wss.size() && http::iequals(url.substr(0, wss.size()), wss);
  const std::string_view scheme = tls ? wss : ws;
  if (url.size() <= scheme.size() || !http::iequals(url.substr(0, scheme.size()), scheme))
    return false;
  url.remove_prefix(scheme.size());
  const std::size_t slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (!target.empty() && target.front() == '?') target.insert(0, "/");
  if (authority.empty() || authority.find_first_of("@ \r\n") != std::string_view::npos)
    return false;
  host = std::string(authority);
  const bool has_port = authority.back() != ']' && authority.rfind(':') != std::string_view::npos;
  host_port = has_port ? host : host + (tls ? ":443" : ":80");
  std::string h;
  std::uint16_t port = 0;
  if (!nbio::address::split_host_port(host_port, h, port) || port == 0) return false;
  return target.find_first_of(" \r\n") == std::string::npos;
}

}  // namespace

client::client(nbio::engine& eng, std::unique_ptr<detail::callbacks> cb, endpoint_options options)
    : shared_(std::make_shared<shared>()) {
  shared_->cb = std::move(cb);
  shared_->options = std::move(options);
  shared_->close_timeout = shared_->options.close_timeout;
  shared_->pong_timeout = shared_->options.pong_timeout;
  shared_->limits = shared_->options.limits;
  shared_->deflate = shared_->options.deflate;
  shared_->budget.limit = shared_->options.max_buffered_bytes;
  shared_->protocols = split_list(shared_->options.subprotocols);
  if (shared_->protocols.size() > 254) shared_->protocols.resize(254);  // indexed by a byte
  nbio::conn_options co;
  co.idle_timeout = shared_->options.idle_timeout;
  co.read_timeout = shared_->options.ping_interval;  // the keepalive's silence (0: off)
  co.max_write_queue = shared_->options.max_write_queue;
  shared_->session = &detail::make_session_target(eng, shared_, co);
  nbio::dial_options& dial = shared_->dial;
  dial.connect_timeout = shared_->options.connect_timeout;
  dial.conn.max_write_queue = co.max_write_queue;
  // The handshake's slot keeps room for the session's state (the rebind happens in place).
  dial.conn.reserve_data = shared_->cb->slot_bytes;
  shared_->eng = &eng;
  shared_->dialer = &eng.make_dialer(handshaking{}, dial);
  if (shared_->options.tls) (void)shared_->tls_dialer_ready();
}

std::error_code client::shared::tls_dialer_ready() {
  std::call_once(tls_once, [this] {
    nbio::dial_options d = dial;
    try {
      d.tls = options.tls ? options.tls : nbio::tls::context::client({.alpn = {"http/1.1"}});
      tls_dialer = &eng->make_dialer(handshaking{}, d);
    } catch (const std::system_error& e) {
      tls_error = e.code();
    } catch (const std::exception&) {
      tls_error = nbio::tls::errc::library_error;
    }
  });
  return tls_error;
}

client::~client() = default;

void client::connect(std::string_view url, std::function<void(std::error_code)> on_error) {
  std::string host_port, host, target;
  bool tls = false;
  if (!split_url(url, host_port, host, target, tls)) {
    if (on_error) on_error(errc::bad_url);
    return;
  }
  if (tls) {
    if (const std::error_code ec = shared_->tls_dialer_ready()) {
      if (on_error) on_error(ec);
      return;
    }
  }
  auto h = std::make_unique<handshake>();
  h->s = shared_;
  h->on_error = on_error;
  const std::string key = make_key();
  h->accept = accept_key(key);
  h->request = "GET " + target + " HTTP/1.1\r\nHost: " + host +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
               "\r\nSec-WebSocket-Version: 13\r\n";
  if (!shared_->options.subprotocols.empty())
    h->request += "Sec-WebSocket-Protocol: " + shared_->options.subprotocols + "\r\n";
  // sliding: this connection is offered as dedicated while the count allows, else as shared.
  h->deflate = shared_->options.deflate;
  if (h->deflate.enabled && h->deflate.memory == deflate_memory::sliding) {
    // Counted from now, so connections still in their handshake take their place.
    h->counted =
        shared_->dedicated.fetch_add(1, std::memory_order_relaxed) < shared_->deflate.max_dedicated;
    if (!h->counted) shared_->dedicated.fetch_sub(1, std::memory_order_relaxed);
    h->deflate.memory = h->counted ? deflate_memory::dedicated : deflate_memory::shared;
  }
  const std::string offer = deflate_offer(h->deflate);
  if (!offer.empty()) h->request += "Sec-WebSocket-Extensions: " + offer + "\r\n";
  for (const auto& [name, value] : shared_->options.headers)
    h->request += name + ": " + value + "\r\n";
  h->request += "\r\n";
  handshake* raw = h.release();
  // The handshake belongs to the connection from its open; a failed dial frees it here.
  (tls ? shared_->tls_dialer : shared_->dialer)
      ->dial(
          host_port, [raw](nbio::conn& c) { c.data<handshaking::conn_data>().h = raw; },
          [raw](std::error_code ec, const std::string&) {
            std::unique_ptr<handshake> gone(raw);
            if (gone->on_error) gone->on_error(ec);
          });
}

}  // namespace nbio::websocket
