// Private. The HTTP client's connections: a pool per loop and host, dialing, sending a request
// (whole, in pieces, or streamed chunked), parsing its response in place, keep-alive reuse,
// retries on stale connections, timeouts and the engine's shutdown. Loop thread only.
#include <algorithm>
#include <cstdio>

#include "http/client_impl.hpp"
#include "nbio/tls/context.hpp"

namespace nbio::http {
namespace detail {

namespace {

using steady = std::chrono::steady_clock;

// Pieces of a streamed body asked for in a row while the kernel takes each one at once; then
// the rest continues in a posted task, so one fast upload cannot hold its loop.
constexpr int pieces_per_turn = 16;

// Where header views go while a head is parsed: one per thread, sized for the largest limit.
std::span<header> header_scratch(std::size_t n) {
  thread_local std::vector<header> fields;
  if (fields.size() < n) fields.resize(n);
  return {fields.data(), n};
}

void attach(nbio::conn& c, exchange& x, bool reused);
void pump(host_pool& p);
void stop_loop(loop_state& ls);

const client_options& config_of(const host_pool& p) noexcept {
  return p.owner->cfg;
}

// A connection is free (new, or its response ended with keep-alive): to the oldest waiting
// request, else into the idle list (closed after idle_timeout), else closed.
void give(host_pool& p, nbio::conn& c, bool reused) {
  conn_state& st = c.data<conn_state>();
  if (exchange* x = p.pop_front()) return attach(c, *x, reused);
  if (st.closing || p.loop->stopping || p.idle.size() >= config_of(p).max_idle_per_host)
    return c.close();
  st.idle = true;
  p.idle.push_back(&c);
  c.set_read_deadline(config_of(p).idle_timeout);  // 0: kept until the server closes it
}

// The most recently used idle connection that is still open, taken out of the list.
nbio::conn* take_idle(host_pool& p) {
  while (!p.idle.empty()) {
    nbio::conn* c = p.idle.back();
    p.idle.pop_back();
    c->data<conn_state>().idle = false;
    if (c->is_open()) return c;  // one closed in this turn waits for its on_close
  }
  return nullptr;
}

void dial_failed(host_pool& p, std::error_code ec) {
  --p.conns;
  --p.dialing;
  if (ec == nbio::errc::shutdown) return stop_loop(*p.loop);
  // The oldest waiter gets the error (with no cap each waiter has its own dial; with a cap
  // the next dial, for the next waiter, starts below).
  if (exchange* x = p.pop_front()) complete(x, ec);
  pump(p);
}

// Both callbacks run on this loop, while the engine (whose dialer keeps the client's state
// alive) runs: a plain pointer to the pool is enough.
void dial(host_pool& p) {
  ++p.conns;
  ++p.dialing;
  p.dialer->dial(
      p.dial, [pool = &p](nbio::conn& c) { c.data<conn_state>().pool = pool; },
      [pool = &p](std::error_code ec, const std::string&) { dial_failed(*pool, ec); }, {},
      static_cast<int>(p.loop->index));
}

// Waiting requests get the idle connections, then dials (one per waiter not yet covered by a
// dial in flight, within max_conns_per_host).
void pump(host_pool& p) {
  while (p.waiting > 0) {
    nbio::conn* c = take_idle(p);
    if (!c) break;
    attach(*c, *p.pop_front(), true);
  }
  const std::size_t cap = config_of(p).max_conns_per_host;
  while (!p.loop->stopping && p.waiting > p.dialing && (cap == 0 || p.conns < cap))
    dial(p);
}

// The engine is stopping (or shutting down gracefully) on this loop: requests still waiting
// end now, idle connections close, and new requests are refused.
void stop_loop(loop_state& ls) {
  ls.stopping = true;  // first: done callbacks below that send again are refused at once
  for (auto& [key, p] : ls.pools) {
    while (exchange* x = p->pop_front())
      complete(x, nbio::errc::shutdown);
    while (nbio::conn* c = take_idle(*p))
      c->close(nbio::errc::shutdown);
  }
}

// Sends what is left of the request body: pieces of `body` or of body_source, each once the
// previous one has left the write queue (on_drained calls again).
void send_more(nbio::conn& c, exchange& x) {
  thread_local std::string piece;
  for (int i = 0; i < pieces_per_turn && !x.sent_all; ++i) {
    if (!c.is_open() || c.queued_bytes() > 0) return;
    if (x.req.body_source) {
      piece.clear();
      const bool more = x.req.body_source(piece);
      x.out.clear();
      if (!piece.empty()) {
        char size[24];
        const int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        x.out.append(size, static_cast<std::size_t>(n));
        x.out += piece;
        x.out += "\r\n";
        x.body_started = true;
      }
      if (!more) {
        x.out += "0\r\n\r\n";
        x.sent_all = true;
      }
      if (!x.out.empty()) c.write(x.out);
    } else {
      const std::string_view rest =
          std::string_view(x.req.body).substr(x.body_sent, inline_body_max);
      x.body_started = true;
      x.body_sent += rest.size();
      x.sent_all = x.body_sent == x.req.body.size();
      c.write(rest);
    }
  }
  if (!x.sent_all && c.is_open() && c.queued_bytes() == 0) {
    c.handle().post([](nbio::conn& conn) {
      if (exchange* y = conn.data<conn_state>().x) send_more(conn, *y);
    });
  }
}

// A connection takes a request: the head (and a small body) go out in one write.
void attach(nbio::conn& c, exchange& x, bool reused) {
  conn_state& st = c.data<conn_state>();
  st.x = &x;
  st.reused = reused;
  st.idle = false;
  x.c = &c;
  c.set_read_deadline(std::chrono::milliseconds(0));  // the idle deadline; the timer rules now
  serialize_head(x.req, x.url, x.owner->cfg, x.out);
  if (!x.req.body_source && x.req.body.size() <= inline_body_max) {
    x.body_sent = x.req.body.size();
    x.body_started = !x.req.body.empty();
    x.sent_all = true;
  }
  c.write(x.out);
  if (!x.sent_all) send_more(c, x);
}

void deliver(exchange& x, std::string_view piece) {
  if (x.follow) return;  // the body of a redirect being followed
  if (x.req.on_body)
    x.req.on_body(piece);
  else
    x.resp.body.append(piece);
}

bool is_redirect(int status) noexcept {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

void take_head(exchange& x, const response_head& head) {
  client_response& r = x.resp;
  r.status = head.status;
  r.reason.assign(head.reason);
  r.version_minor = head.version_minor;
  r.headers.reserve(head.headers.size());
  for (const header& h : head.headers)
    r.headers.emplace_back(std::string(h.name), std::string(h.value));
  x.keep_alive = head.keep_alive && head.status != 101;
  x.until_close = head.body == body_kind::until_close;
  x.follow = x.owner->cfg.max_redirects > 0 && is_redirect(head.status) && head.has("Location") &&
             !((head.status == 307 || head.status == 308) && x.req.body_source);
  x.body = body_decoder(head.body, head.content_length, x.limits());
  // Memory follows the bytes that came, not a promise: at most 1 MiB ahead of them.
  if (!x.follow && !x.req.on_body && head.body == body_kind::length)
    r.body.reserve(
        static_cast<std::size_t>(std::min<std::uint64_t>(head.content_length, 1u << 20)));
  x.head_done = true;
}

// Parses as much of the response as `data` holds (data starts at the response, or where the
// last call stopped consuming). True when it is complete; `used` is what it consumed.
bool read_response(exchange& x, std::string_view data, std::size_t& used, std::error_code& ec) {
  while (!x.head_done) {
    const parser_limits& limits = x.limits();
    response_head head;
    const parse_result r =
        x.parser.parse(data.substr(used), header_scratch(limits.max_headers), head, x.req.method);
    if (r.status == parse_status::error) {
      ec = r.error;
      return false;
    }
    if (r.status == parse_status::incomplete) return false;
    used += r.consumed;
    x.parser.reset();
    if (head.status >= 100 && head.status < 200 && head.status != 101) continue;  // interim
    take_head(x, head);
  }
  while (!x.body.done()) {
    const body_result b = x.body.next(data.substr(used));
    if (b.status == parse_status::error) {
      ec = b.error;
      return false;
    }
    used += b.consumed;
    if (!b.data.empty()) deliver(x, b.data);
    if (b.status == parse_status::complete) break;
    if (b.consumed == 0) return false;  // a chunk-size line or trailer not whole yet
  }
  return true;
}

void detach(nbio::conn& c, exchange& x) {
  c.data<conn_state>().x = nullptr;
  x.c = nullptr;
}

// The response is complete: the connection goes back to the pool when it may carry another
// exchange, then the request ends (or follows its redirect).
void finish(nbio::conn& c, exchange* x, bool leftover) {
  const conn_state& st = c.data<conn_state>();
  const bool reusable = x->keep_alive && !x->until_close && !leftover && x->sent_all &&
                        !x->close_requested && !st.closing && c.is_open();
  detach(c, *x);
  if (reusable)
    give(*st.pool, c, true);
  else
    c.close();
  if (x->follow)
    follow_redirect(x);
  else
    complete(x, {});
}

void fail(nbio::conn& c, exchange* x, std::error_code ec) {
  detach(c, *x);
  c.close();
  complete(x, ec);
}

// The connection of `x` closed under it (the request was detached already).
void conn_lost(host_pool& p, exchange* x, std::error_code cause, bool reused) {
  if (cause == nbio::errc::shutdown) return complete(x, cause);
  if (cause == nbio::errc::eof && x->head_done && x->until_close && x->body.finish_at_eof())
    return complete(x, {});  // a close-delimited body ends here (when on_end did not see it)
  const bool stale = cause == nbio::errc::eof || cause == std::errc::connection_reset ||
                     cause == std::errc::broken_pipe || cause == std::errc::connection_aborted;
  if (reused && stale && !x->got_bytes && !p.loop->stopping &&
      (is_idempotent(x->req.method) || !x->body_started) &&
      x->retries <= static_cast<int>(config_of(p).max_idle_per_host)) {
    ++x->retries;
    x->reset_attempt();
    p.push_front(*x);  // the caller pumps
    return;
  }
  if (cause == nbio::errc::eof)
    cause = x->got_bytes ? client_errc::truncated_response : client_errc::closed_before_response;
  complete(x, cause);
}

void on_timeout(exchange* x) {
  x->timer_armed = false;
  if (nbio::conn* c = x->c) {
    detach(*c, *x);
    c->close(nbio::errc::read_timeout);
  } else if (x->waiting) {
    x->pool->unlink(*x);
  }
  complete(x, client_errc::request_timeout);
}

// Unconsumed bytes a response may leave between reads: an incomplete head, chunk-size line or
// trailer section (each bounded by the parser; this bounds their sum).
std::size_t pending_bound(const parser_limits& l) noexcept {
  return l.max_header_bytes + l.max_chunk_line + l.max_trailer_bytes + 4096;
}

}  // namespace

// The engine's handler for the client's connections (its dialer's).
struct client_conn {
  using conn_data = conn_state;
  std::shared_ptr<client::shared> owner;  // the pools outlive every call from the engine

  void on_open(nbio::conn& c) {
    host_pool& p = *c.data<conn_state>().pool;  // set by the dial's on_connect
    --p.dialing;
    if (p.loop->stopping) return c.close(nbio::errc::shutdown);
    give(p, c, false);
  }

  void on_data(nbio::conn& c, std::string_view bytes) {
    exchange* x = c.data<conn_state>().x;
    if (!x) return c.close();  // bytes on an idle connection: it is out of step, drop it
    x->got_bytes = true;
    const bool buffered = !x->pending.empty();
    if (buffered) x->pending.append(bytes);
    const std::string_view data = buffered ? std::string_view(x->pending) : bytes;
    std::size_t used = 0;
    std::error_code ec;
    const bool whole = read_response(*x, data, used, ec);
    if (ec) return fail(c, x, ec);
    if (whole) return finish(c, x, used < data.size());
    // Keep the unconsumed tail (the fast path, a response whole in one read, copies nothing).
    if (buffered)
      x->pending.erase(0, used);
    else
      x->pending.assign(data.substr(used));
    if (x->pending.size() > pending_bound(x->limits())) fail(c, x, errc::headers_too_large);
  }

  void on_drained(nbio::conn& c) {
    if (exchange* x = c.data<conn_state>().x; x && !x->sent_all) send_more(c, *x);
  }

  // The server half-closed: the end of a close-delimited body, else the end of the connection.
  void on_end(nbio::conn& c) {
    exchange* x = c.data<conn_state>().x;
    if (x && x->head_done && x->until_close && x->pending.empty()) {
      x->body.finish_at_eof();
      return finish(c, x, false);
    }
    c.close(nbio::errc::eof);
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    conn_state& st = c.data<conn_state>();
    host_pool& p = *st.pool;
    if (st.idle) {
      std::erase(p.idle, &c);
      st.idle = false;
    }
    --p.conns;
    if (exchange* x = st.x) {
      detach(c, *x);
      conn_lost(p, x, cause, st.reused);
    }
    if (cause == nbio::errc::shutdown)
      stop_loop(*p.loop);
    else
      pump(p);
  }

  // Graceful shutdown: idle connections close now, busy ones after their response.
  void on_shutdown(nbio::conn& c) {
    c.data<conn_state>().closing = true;
    stop_loop(*c.data<conn_state>().pool->loop);
  }
};

void host_pool::push_back(exchange& x) noexcept {
  x.prev = tail;
  x.next = nullptr;
  (tail ? tail->next : head) = &x;
  tail = &x;
  x.waiting = true;
  ++waiting;
}

void host_pool::push_front(exchange& x) noexcept {
  x.prev = nullptr;
  x.next = head;
  (head ? head->prev : tail) = &x;
  head = &x;
  x.waiting = true;
  ++waiting;
}

void host_pool::unlink(exchange& x) noexcept {
  (x.prev ? x.prev->next : head) = x.next;
  (x.next ? x.next->prev : tail) = x.prev;
  x.prev = x.next = nullptr;
  x.waiting = false;
  --waiting;
}

exchange* host_pool::pop_front() noexcept {
  exchange* x = head;
  if (x) unlink(*x);
  return x;
}

host_pool::~host_pool() {
  // Only with the engine gone (no loop runs): waiting requests end with errc::shutdown.
  while (exchange* x = pop_front())
    delete x;
}

void close_idle(loop_state& ls) {
  for (auto& [key, p] : ls.pools)
    while (nbio::conn* c = take_idle(*p))
      c->close();
}

void complete(exchange* x, std::error_code ec) {
  if (x->timer_armed) {
    x->owner->eng.loop_at(x->loop_index).cancel_timer(x->timer);
    x->timer_armed = false;
  }
  x->completed = true;
  client::done_handler done = std::move(x->done);
  client_response resp = std::move(x->resp);
  resp.url = std::move(x->req.url);
  delete x;
  if (done) done(ec, std::move(resp));
}

void start_exchange(exchange* x) {
  client::shared& s = *x->owner;
  loop_state& ls = *s.loops[x->loop_index];
  if (ls.stopping) return complete(x, nbio::errc::shutdown);
  if (x->timeout.count() > 0 && !x->timer_armed) {
    const auto now = steady::now();
    if (x->deadline == steady::time_point{}) x->deadline = now + x->timeout;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(x->deadline - now);
    if (left.count() <= 0) return complete(x, client_errc::request_timeout);
    x->timer = s.eng.loop_at(ls.index).add_timer(left, [x] { on_timeout(x); });
    x->timer_armed = true;
  }
  if (x->url.tls) {
    if (const std::error_code ec = s.tls_dialer_ready()) return complete(x, ec);
  }
  host_pool& p = s.pool_for(ls, x->url);
  x->pool = &p;
  if (nbio::conn* c = take_idle(p)) return attach(*c, *x, true);
  p.push_back(*x);
  pump(p);
}

}  // namespace detail

detail::host_pool& client::shared::pool_for(detail::loop_state& ls, const detail::url_parts& url) {
  if (auto it = ls.pools.find(url.key); it != ls.pools.end()) return *it->second;
  auto p = std::make_unique<detail::host_pool>();
  p->key = url.key;
  p->dial = url.dial;
  p->owner = this;
  p->dialer = url.tls ? tls_dialer : dialer;
  p->loop = &ls;
  return *ls.pools.emplace(url.key, std::move(p)).first->second;
}

void client::shared::make_dialer() {
  nbio::dial_options opts;
  opts.connect_timeout = cfg.connect_timeout;
  dialer = &eng.make_dialer(detail::client_conn{shared_from_this()}, opts);
  if (cfg.tls) (void)tls_dialer_ready();
}

std::error_code client::shared::tls_dialer_ready() {
  std::call_once(tls_once, [this] {
    nbio::dial_options opts;
    opts.connect_timeout = cfg.connect_timeout;
    try {
      opts.tls = cfg.tls ? cfg.tls : nbio::tls::context::client({.alpn = {"http/1.1"}});
      tls_dialer = &eng.make_dialer(detail::client_conn{shared_from_this()}, opts);
    } catch (const std::system_error& e) {
      tls_error = e.code();
    } catch (const std::exception&) {
      tls_error = nbio::tls::errc::library_error;
    }
  });
  return tls_error;
}

}  // namespace nbio::http
