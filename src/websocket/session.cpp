// Private. One WebSocket connection after its handshake, in either role: frames read in place
// from the loop's buffer, messages assembled only when they come in pieces, pings answered, the
// closing handshake; and the connection API handlers use.
#include "websocket/session.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <system_error>

namespace nbio::websocket {

namespace detail {

std::uint32_t ms_now() noexcept {
  using namespace std::chrono;
  return static_cast<std::uint32_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

std::string_view frame(opcode op, std::string_view payload, bool mask, bool rsv1) {
  thread_local std::string out;  // reused: no allocation once grown
  std::array<char, max_header_size> head{};
  std::uint32_t key = 0;
  // RFC 6455 5.3: a fresh, unpredictable key per frame.
  if (mask) RAND_bytes(reinterpret_cast<unsigned char*>(&key), sizeof(key));
  const std::size_t n = encode_header(head, op, payload.size(), true, rsv1, mask ? &key : nullptr);
  out.assign(head.data(), n);
  out.append(payload);
  if (mask) apply_mask(std::span<char>(out.data() + n, payload.size()), key, 0);
  return out;
}

// --- permessage-deflate ---

namespace {

// The zlib streams a thread shares among its connections (a loop's, or a blocking-mode
// connection's own thread): compressors for messages sent without context takeover, one per
// window size and level in use; decompressors lent to connections for one message each; and
// the buffers compressed and inflated messages pass through. Freed with the thread.
struct zlib_cache {
  struct shared_deflater {
    int bits, level, mem_level;
    std::unique_ptr<deflater> d;
  };
  std::vector<shared_deflater> deflaters;
  std::vector<std::unique_ptr<inflater>> idle_inflaters;  // at most max_idle kept
  std::string deflated;  // the payload of a compressed message being sent
  std::string inflated;  // a compressed message that arrived whole in one read
  static constexpr std::size_t max_idle = 16;
};

zlib_cache& cache() {
  thread_local zlib_cache c;
  return c;
}

pending& more(ws_state& st) {
  if (!st.more) st.more = new pending;
  return *st.more;
}

// The thread's compressor without context takeover for this window and level.
deflater& shared_deflater(int bits, const deflate_options& o) {
  zlib_cache& zc = cache();
  for (auto& d : zc.deflaters)
    if (d.bits == bits && d.level == o.level && d.mem_level == o.mem_level) return *d.d;
  zc.deflaters.push_back(
      {bits, o.level, o.mem_level, std::make_unique<deflater>(bits, false, o.level, o.mem_level)});
  return *zc.deflaters.back().d;
}

// The compressor for the connection's next message.
deflater& compressor(ws_state& st) {
  const deflate_options& o = st.s->deflate;
  if (!(st.z & z_tx_keep)) return shared_deflater(tx_window_bits(st), o);
  pending& p = more(st);
  if (!p.tx) p.tx = std::make_unique<deflater>(tx_window_bits(st), true, o.level, o.mem_level);
  return *p.tx;
}

// The decompressor for a message that begins: the dedicated one, or one from the pool.
std::unique_ptr<inflater> borrow_inflater() {
  zlib_cache& zc = cache();
  if (zc.idle_inflaters.empty()) return std::make_unique<inflater>(15);
  std::unique_ptr<inflater> in = std::move(zc.idle_inflaters.back());
  zc.idle_inflaters.pop_back();
  return in;
}

void give_back(std::unique_ptr<inflater> in) {
  if (!in) return;
  zlib_cache& zc = cache();
  if (zc.idle_inflaters.size() >= zlib_cache::max_idle) return;  // freed
  in->reset();
  zc.idle_inflaters.push_back(std::move(in));
}

std::error_code send_frame(nbio::conn& c, opcode op, std::string_view payload) {
  ws_state& st = state(c);
  if (st.flags & f_close_sent) return nbio::errc::not_connected;
  const bool mask = (st.flags & f_client) != 0;
  if ((st.z & z_on) && !is_control(op) && payload.size() >= st.s->deflate.threshold) {
    std::string& z = cache().deflated;
    if (!compressor(st).compress(payload, z)) {
      c.close(std::make_error_code(std::errc::not_enough_memory));
      return std::make_error_code(std::errc::not_enough_memory);
    }
    // Without context takeover each message stands alone: one that does not shrink goes as
    // it is. With it, the peer's window must see every byte our compressor saw.
    if ((st.z & z_tx_keep) || z.size() < payload.size()) return c.write(frame(op, z, mask, true));
  }
  return c.write(frame(op, payload, mask));
}

}  // namespace

std::string compressed_frame(const ws_state& st, std::string_view data, bool binary) {
  std::string& z = cache().deflated;
  if (!shared_deflater(tx_window_bits(st), st.s->deflate).compress(data, z) ||
      z.size() >= data.size())
    return {};
  return std::string(frame(binary ? opcode::binary : opcode::text, z, false, true));
}

bool may_keep_context(const session_shared& s) noexcept {
  switch (s.deflate.memory) {
    case deflate_memory::shared:
      return false;
    case deflate_memory::dedicated:
      return true;
    case deflate_memory::sliding:
      return s.dedicated.load(std::memory_order_relaxed) < s.deflate.max_dedicated;
  }
  return false;
}

bool init_deflate(ws_state& st, const deflate_params& p) {
  const bool client = (st.flags & f_client) != 0;
  const bool tx_reset = client ? p.client_no_context_takeover : p.server_no_context_takeover;
  const bool rx_reset = client ? p.server_no_context_takeover : p.client_no_context_takeover;
  const int tx = client ? p.client_max_window_bits : p.server_max_window_bits;
  const int rx = client ? p.server_max_window_bits : p.client_max_window_bits;
  st.z = z_on;
  if (!tx_reset) st.z |= z_tx_keep;
  if (!rx_reset) st.z |= z_rx_keep;
  st.z_bits = static_cast<std::uint8_t>((tx & 0x0f) | (rx & 0x0f) << 4);
  return (st.z & (z_tx_keep | z_rx_keep)) != 0;
}

void send_close(nbio::conn& c, close_code code, std::string_view reason) {
  ws_state& st = state(c);
  if (st.flags & f_close_sent) return;
  std::array<char, max_control_payload> payload{};
  const std::size_t n =
      code == close_code::no_status ? 0 : make_close_payload(payload, code, reason);
  c.write(frame(opcode::close, {payload.data(), n}, (st.flags & f_client) != 0));
  st.flags |= f_close_sent;
}

namespace {

// The connection handler every WebSocket connection is bound to after its handshake.
struct ws_conn {
  using conn_data = ws_state;
  std::shared_ptr<const session_shared> s;

  void on_open(nbio::conn& c) {
    ws_state& st = state(c);
    st.s = s.get();
    const callbacks& cb = *s->cb;
    if (cb.construct_data) {
      try {
        cb.construct_data(static_cast<char*>(c.slot()) + cb.data_offset);
      } catch (const std::exception&) {  // its constructor threw: the handler never hears of it
        return c.close(std::make_error_code(std::errc::not_enough_memory));
      }
    }
    st.flags |= f_opened;
    connection ws(c);
    if (cb.on_open) cb.on_open(cb.handler, ws);
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    ws_state& st = state(c);
    if (st.flags & f_close_received) return;             // nothing after a close frame is read
    st.flags &= static_cast<std::uint8_t>(~f_ping_out);  // the peer is alive
    if (st.flags & f_close_sent) {
      // Waiting for the peer's close: a read does not push the deadline back.
      const auto left = static_cast<std::int32_t>(st.close_by - ms_now());
      if (left <= 0) return c.close(nbio::errc::read_timeout);
      c.set_read_deadline(std::chrono::milliseconds(left));
    }
    if (st.flags & f_failed) return;  // lingering after a failure: see fail()
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
      if (e.status == frame_status::error) return fail(c, e.error);
      if (e.status != frame_status::event) break;
      used += e.consumed;
      if (e.kind == event_kind::data)
        on_piece(c, st, e);
      else
        on_control(c, st, e);
      if (st.flags & (f_close_received | f_failed)) return;
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
    account(c, st);
    release_if_idle(st);
  }

  // The read deadline passed: with keepalive (the session target's read_timeout is the ping
  // interval) a silent peer gets a ping and pong_timeout to answer; a second silence, or the end of
  // the wait for the peer's close frame, closes.
  bool on_read_timeout(nbio::conn& c) {
    ws_state& st = state(c);
    if (st.flags & (f_close_sent | f_ping_out)) return false;
    st.flags |= f_ping_out;
    c.write(frame(opcode::ping, {}, (st.flags & f_client) != 0));
    c.set_read_deadline(s->pong_timeout);
    return true;
  }

  void on_drained(nbio::conn& c) {
    connection ws(c);
    if (s->cb->on_drained) s->cb->on_drained(s->cb->handler, ws);
  }

  void on_close(nbio::conn& c, std::error_code) {
    ws_state& st = state(c);
    connection ws(c);
    const bool got = st.flags & f_close_received;
    const std::uint16_t code =
        got ? st.close_code : static_cast<std::uint16_t>(close_code::abnormal);
    // Only a connection whose on_open ran hears on_close (not one whose upgrade failed before).
    if (st.flags & f_opened) {
      const callbacks& cb = *s->cb;
      if (cb.on_close)
        cb.on_close(cb.handler, ws, code, got && st.more ? std::string_view(st.more->reason) : "");
      if (cb.destroy_data) cb.destroy_data(static_cast<char*>(c.slot()) + cb.data_offset);
      st.flags &= static_cast<std::uint8_t>(~f_opened);
    }
    delete st.more;
    st.more = nullptr;
    if (st.z & z_counted) s->dedicated.fetch_sub(1, std::memory_order_relaxed);
    st.z = 0;
  }

 private:
  // The buffer budget: records what the connection assembles now. Past the endpoint's limit
  // the connection chosen (this one, or the largest holder of this loop: see
  // http/buffer_budget.hpp) fails with 1008 (policy violation).
  void account(nbio::conn& c, ws_state& st) {
    if (!st.more) return;
    pending& p = *st.more;
    const std::size_t held = http::detail::heap_bytes(p.message) + http::detail::heap_bytes(p.tail);
    if (nbio::conn* victim = p.holder.update(s->budget, c, held)) fail(*victim, errc::over_budget);
  }

  static void release_if_idle(ws_state& st) {
    const pending* p = st.more;
    if (p && p->tail.empty() && p->message.empty() && p->reason.empty() && !p->tx && !p->rx) {
      delete st.more;
      st.more = nullptr;
    }
  }

  // Fails the connection (RFC 6455 7.1.7): our close frame with the reason, then FIN, and reads
  // go on, discarded, until the peer's FIN or the close timeout. Closing the socket at once
  // would answer the bytes still coming (the rest of a message too big, say) with a reset,
  // and a peer that gets a reset may drop our close frame unread (Chromium reports 1006
  // instead of the 1009 it was sent), the lingering close nginx does for the same reason.
  void fail(nbio::conn& c, std::error_code ec) {
    ws_state& st = state(c);
    send_close(c, close_code_of(ec), ec.message());
    st.flags |= f_failed;
    if (st.more) {  // what was assembled is of no use now
      st.more->message = std::string();
      st.more->tail = std::string();
      st.more->holder.release();
    }
    st.close_by = ms_now() + static_cast<std::uint32_t>(s->close_timeout.count());
    c.set_read_deadline(s->close_timeout);
    c.shutdown_write();
  }

  // A piece of a compressed message (RSV1): inflated as it comes, bounded by max_message, text
  // checked as UTF-8 as it is inflated. A message whole in one read is inflated into the
  // thread's buffer with a borrowed stream (or the dedicated one) and handed over from there;
  // one in pieces keeps its stream and its bytes in `pending` until its end.
  void on_compressed(nbio::conn& c, ws_state& st, const frame_event& e) {
    const bool binary = e.op == opcode::binary;
    const std::uint64_t max = s->limits.max_message;
    const bool keep = (st.z & z_rx_keep) != 0;
    if (e.message_begin && e.message_end) {
      std::unique_ptr<inflater> borrowed;
      inflater* in = nullptr;
      if (keep) {
        pending& p = more(st);
        if (!p.rx) p.rx = std::make_unique<inflater>(rx_window_bits(st));
        in = p.rx.get();
      } else {
        borrowed = borrow_inflater();
        in = borrowed.get();
      }
      std::string& out = cache().inflated;
      out.clear();
      std::error_code ec = in->inflate(e.payload, true, out, max);
      if (!ec && !binary && !valid_utf8(out)) ec = errc::invalid_utf8;
      give_back(std::move(borrowed));
      if (ec) return fail(c, ec);
      connection ws(c);
      s->message(ws, out, binary);
      return;
    }
    pending& p = more(st);
    if (e.message_begin) {
      p.message.clear();
      p.utf8.reset();
      st.flags = static_cast<std::uint8_t>(binary ? st.flags | f_binary : st.flags & ~f_binary);
      if (!p.rx) p.rx = keep ? std::make_unique<inflater>(rx_window_bits(st)) : borrow_inflater();
    }
    const std::size_t before = p.message.size();
    std::error_code ec = p.rx->inflate(e.payload, e.message_end, p.message, max);
    if (!ec && !binary) {
      const std::string_view added = std::string_view(p.message).substr(before);
      if (!p.utf8.feed(added) || (e.message_end && !p.utf8.complete())) ec = errc::invalid_utf8;
    }
    if (ec) return fail(c, ec);
    if (!e.message_end) return;
    if (!keep) give_back(std::move(p.rx));
    std::string message = std::move(p.message);
    p.message = std::string();
    connection ws(c);
    s->message(ws, message, binary);
  }

  void on_piece(nbio::conn& c, ws_state& st, const frame_event& e) {
    if (st.flags & f_close_sent) return;  // closing: messages are dropped
    if (e.compressed) return on_compressed(c, st, e);
    const bool binary = e.op == opcode::binary;
    if (e.message_begin && e.message_end) {  // whole in this read: no copy
      connection ws(c);
      s->message(ws, e.payload, binary);
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
    s->message(ws, message, (st.flags & f_binary) != 0);
  }

  void on_control(nbio::conn& c, ws_state& st, const frame_event& e) {
    if (e.op == opcode::ping) {
      if (!(st.flags & f_close_sent))
        c.write(frame(opcode::pong, e.payload, (st.flags & f_client) != 0));
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

nbio::upgrade_target& make_session_target(nbio::engine& eng,
                                          std::shared_ptr<const session_shared> s,
                                          const nbio::conn_options& options) {
  nbio::conn_options co = options;
  co.reserve_data = s->cb->slot_bytes;  // the handler's conn_data follows the state
  return eng.make_upgrade_target(ws_conn{std::move(s)}, co);
}

}  // namespace detail

using namespace detail;

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
  const auto timeout = st.s->close_timeout;
  st.close_by = ms_now() + static_cast<std::uint32_t>(timeout.count());
  c_->set_read_deadline(timeout);
}

void connection::check_data_type(const void* tag) const noexcept {
  const ws_state& st = state(*c_);
  if (!st.s || st.s->cb->data_type != tag) {
    std::fprintf(stderr,
                 "nbio: websocket::connection::data<T>() with a T other than the "
                 "handler's conn_data\n");
    std::abort();
  }
}

std::string_view connection::subprotocol() const noexcept {
  const ws_state& st = state(*c_);
  if (st.protocol == 0 || !st.s) return {};
  return st.s->protocols[st.protocol - 1u];
}

bool connection::permessage_deflate() const noexcept {
  return (state(*c_).z & z_on) != 0;
}

std::string frame_message(std::string_view data, bool binary) {
  return std::string(frame(binary ? opcode::binary : opcode::text, data, false));
}

std::error_code send(nbio::conn_handle to, std::string_view data, bool binary) {
  return to.write(frame(binary ? opcode::binary : opcode::text, data, false));
}

}  // namespace nbio::websocket
