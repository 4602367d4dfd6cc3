// Private. The WebSocket connection handler (frames read in place, messages assembled only when
// they must be, the closing handshake) and the HTTP route that upgrades to it.
#include "nbio/websocket/server.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <vector>

#include "nbio/http/request.hpp"
#include "nbio/websocket/handshake.hpp"

namespace nbio::websocket {

// What a server's connections share.
struct server::shared {
  handler* h = nullptr;
  server_options options;
  std::vector<std::string> protocols;  // server_options::subprotocols, split
};

namespace {

using shared = server::shared;

// What a connection holds only while it needs it: bytes of a frame that is not whole yet, a
// message that came in pieces, the peer's close reason.
struct pending {
  std::string tail;     // unconsumed bytes (an incomplete header or control frame)
  std::string message;  // a message assembled from pieces
  std::string reason;   // the peer's close reason
};

enum : std::uint8_t {
  f_close_sent = 1 << 0,
  f_close_received = 1 << 1,
  f_binary = 1 << 2,  // the message being assembled is binary
};

// Per connection, in the engine's slot (sizeof: what server::reserve_data asks a listener for).
struct ws_state {
  frame_parser parser{role::server};
  pending* more = nullptr;
  const shared* s = nullptr;
  void* user = nullptr;
  std::uint32_t close_by = 0;    // after our close frame: when to stop waiting (ms_now())
  std::uint16_t close_code = 0;  // the peer's, once its close frame came
  std::uint8_t flags = 0;
  std::uint8_t protocol = 0;  // 1 + index into shared::protocols; 0: none
};

// A millisecond clock for deadlines kept in 32 bits (wraps after 49 days; compared by
// difference).
std::uint32_t ms_now() noexcept {
  using namespace std::chrono;
  return static_cast<std::uint32_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

ws_state& state(nbio::conn& c) {
  return c.data<ws_state>();
}

// One frame, header and payload, in a per-thread buffer (reused: no allocation once grown).
std::string_view frame(opcode op, std::string_view payload) {
  thread_local std::string out;
  std::array<char, max_header_size> head{};
  const std::size_t n = encode_header(head, op, payload.size(), true, false, nullptr);
  out.assign(head.data(), n);
  out.append(payload);
  return out;
}

std::error_code send_frame(nbio::conn& c, opcode op, std::string_view payload) {
  if (state(c).flags & f_close_sent) return nbio::errc::not_connected;
  return c.write(frame(op, payload));
}

// Sends a close frame (once) and arms the wait for the peer's.
void send_close(nbio::conn& c, close_code code, std::string_view reason) {
  ws_state& st = state(c);
  if (st.flags & f_close_sent) return;
  std::array<char, max_control_payload> payload{};
  const std::size_t n =
      code == close_code::no_status ? 0 : make_close_payload(payload, code, reason);
  c.write(frame(opcode::close, {payload.data(), n}));
  st.flags |= f_close_sent;
}

// The connection handler every upgraded connection is bound to.
struct ws_conn {
  using conn_data = ws_state;
  std::shared_ptr<shared> s;

  void on_open(nbio::conn& c) {
    state(c).s = s.get();
    connection ws(c);
    s->h->on_open(ws);
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    ws_state& st = state(c);
    if (st.flags & f_close_received) return;  // nothing after a close frame is read
    if (st.flags & f_close_sent) {
      // Waiting for the peer's close: a read does not push the deadline back.
      const auto left = static_cast<std::int32_t>(st.close_by - ms_now());
      if (left <= 0) return c.close(nbio::errc::read_timeout);
      c.set_read_deadline(std::chrono::milliseconds(left));
    }
    // The bytes are this connection's to change (the loop's buffer, or its own): unmask there.
    std::span<char> buf(const_cast<char*>(bytes.data()), bytes.size());
    const bool from_tail = st.more && !st.more->tail.empty();
    if (from_tail) {
      st.more->tail.append(bytes);
      buf = std::span<char>(st.more->tail.data(), st.more->tail.size());
    }
    std::size_t used = 0;
    while (c.is_open()) {
      const frame_event e = st.parser.next(buf.subspan(used));
      if (e.status == frame_status::error) {
        send_close(c, close_code_of(e.error), e.error.message());
        c.close_after_flush();
        return;
      }
      if (e.status != frame_status::event) break;
      used += e.consumed;
      if (e.kind == event_kind::data)
        on_piece(c, st, e);
      else
        on_control(c, st, e);
      if (st.flags & f_close_received) return;
    }
    if (!c.is_open()) return;
    // Keep what was not consumed (at most a header or a control frame).
    const std::size_t left = buf.size() - used;
    if (from_tail) {
      st.more->tail.erase(0, used);
    } else if (left > 0) {
      if (!st.more) st.more = new pending;
      st.more->tail.assign(buf.data() + used, left);
    }
    release_if_idle(st);
  }

  void on_drained(nbio::conn& c) {
    connection ws(c);
    s->h->on_drained(ws);
  }

  void on_close(nbio::conn& c, std::error_code) {
    ws_state& st = state(c);
    connection ws(c);
    const bool got = st.flags & f_close_received;
    const std::uint16_t code =
        got ? st.close_code : static_cast<std::uint16_t>(close_code::abnormal);
    s->h->on_close(ws, code, got && st.more ? std::string_view(st.more->reason) : "");
    delete st.more;
    st.more = nullptr;
  }

 private:
  static void release_if_idle(ws_state& st) {
    if (st.more && st.more->tail.empty() && st.more->message.empty() && st.more->reason.empty()) {
      delete st.more;
      st.more = nullptr;
    }
  }

  void on_piece(nbio::conn& c, ws_state& st, const frame_event& e) {
    if (st.flags & f_close_sent) return;  // closing: messages are dropped
    const bool binary = e.op == opcode::binary;
    if (e.message_begin && e.message_end) {  // whole in this read: no copy
      connection ws(c);
      s->h->on_message(ws, e.payload, binary);
      return;
    }
    if (!st.more) st.more = new pending;
    if (e.message_begin) {
      st.more->message.clear();
      st.flags = static_cast<std::uint8_t>(binary ? st.flags | f_binary : st.flags & ~f_binary);
    }
    st.more->message.append(e.payload);
    if (!e.message_end) return;
    std::string message = std::move(st.more->message);
    st.more->message = std::string();
    connection ws(c);
    s->h->on_message(ws, message, (st.flags & f_binary) != 0);
  }

  void on_control(nbio::conn& c, ws_state& st, const frame_event& e) {
    if (e.op == opcode::ping) {
      if (!(st.flags & f_close_sent)) c.write(frame(opcode::pong, e.payload));
      return;
    }
    if (e.op != opcode::close) return;  // a pong: nothing to do
    st.flags |= f_close_received;
    st.close_code = e.close_code;
    if (!e.close_reason.empty()) {
      if (!st.more) st.more = new pending;
      st.more->reason.assign(e.close_reason);
    }
    // Echo the code (RFC 6455 5.5.1) unless we closed first; then the TCP close.
    send_close(c, static_cast<close_code>(e.close_code), {});
    c.close_after_flush();
  }
};

}  // namespace

const std::uint32_t server::reserve_data = sizeof(ws_state);

std::error_code connection::send(std::string_view data, bool binary) {
  return send_frame(*c_, binary ? opcode::binary : opcode::text, data);
}

std::error_code connection::ping(std::string_view payload) {
  if (payload.size() > max_control_payload) payload = payload.substr(0, max_control_payload);
  return send_frame(*c_, opcode::ping, payload);
}

void connection::close(close_code code, std::string_view reason) {
  ws_state& st = state(*c_);
  if (st.flags & f_close_sent) return;
  send_close(*c_, code, reason);
  // Wait for the peer's close frame, within the close timeout.
  const auto timeout = st.s->options.close_timeout;
  st.close_by = ms_now() + static_cast<std::uint32_t>(timeout.count());
  c_->set_read_deadline(timeout);
}

void* connection::user_data() const noexcept {
  return state(*c_).user;
}

void connection::set_user_data(void* p) noexcept {
  state(*c_).user = p;
}

std::string_view connection::subprotocol() const noexcept {
  const ws_state& st = state(*c_);
  if (st.protocol == 0 || !st.s) return {};
  return st.s->protocols[st.protocol - 1u];
}

std::string frame_message(std::string_view data, bool binary) {
  return std::string(frame(binary ? opcode::binary : opcode::text, data));
}

std::error_code send(nbio::conn_handle to, std::string_view data, bool binary) {
  return to.write(frame(binary ? opcode::binary : opcode::text, data));
}

server::server(nbio::engine& eng, handler& h, server_options options)
    : shared_(std::make_shared<shared>()) {
  shared_->h = &h;
  shared_->options = std::move(options);
  std::string_view list = shared_->options.subprotocols;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view t = list.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
      t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
      t.remove_suffix(1);
    if (!t.empty() && shared_->protocols.size() < 254) shared_->protocols.emplace_back(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  nbio::conn_options co;
  co.idle_timeout = shared_->options.idle_timeout;
  co.max_write_queue = shared_->options.max_write_queue;
  binding_ = &eng.make_binding(ws_conn{shared_}, co);
}

const server_options& server::options() const noexcept {
  return shared_->options;
}

http::handler server::upgrade() {
  return [this](http::response_writer& w, http::request& r) {
    const upgrade_check check = check_upgrade(r);
    auto refuse = [&w](int status, std::string_view why) {
      if (status == 426) w.set_header("Sec-WebSocket-Version", "13");
      w.write_header(status);
      w.write(why);
      w.write("\n");
    };
    if (check.status != 0) return refuse(check.status, check.reason);
    const server_options& o = options();
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
    answer += "\r\n";
    const frame_limits limits = o.limits;
    w.hijack(*binding_, [answer = std::move(answer), limits, protocol](nbio::conn& c) {
      c.write(answer);
      ws_state& st = state(c);
      st.parser = frame_parser(role::server, limits);
      st.protocol = protocol;
    });
  };
}

}  // namespace nbio::websocket
