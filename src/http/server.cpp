// Private. The HTTP server's connection handler: reads, parses in place, runs the handler, and
// keeps an incomplete request (and only that) in a buffer of its own.
#include "nbio/http/server.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/buffer_budget.hpp"
#include "http/date.hpp"

namespace nbio::http {

struct server::shared {
  handler h;
  server_options config;
  // What the request parser allows: config.limits, with a body up to max_streamed_body when
  // some bodies are streamed (collected ones are held to limits.max_body after the head).
  parser_limits parse_limits;
  std::atomic<std::uint64_t> served{0};
  // The bytes incomplete requests hold, all loops together (server_options::max_buffered_bytes).
  detail::buffer_budget budget;
  // Deferred responses may finish on other threads after the server (and then its engine) is
  // gone: they post to connections only under this lock, while `open` holds.
  std::mutex deferred_mutex;
  bool open = true;
};

namespace {

using steady = std::chrono::steady_clock;

// Where one request stands while it is not whole yet. The fast path keeps one per thread (for
// a request that arrives whole in one read it is all it needs); a connection whose request
// stays incomplete gets its own, with the unconsumed bytes.
struct request_work {
  request_parser parser;
  std::size_t head_len = 0;           // > 0 once the head is complete
  body_decoder chunked;               // chunked bodies: the decoder's state
  std::size_t raw_pos = 0;            // chunked bodies: offset of the first undecoded byte
  std::string chunked_body;           // chunked bodies: decoded so far
  steady::time_point started{};       // when the head's first byte arrived (header timeout)
  steady::time_point body_started{};  // when the head was complete (body timeout)
  body_kind body = body_kind::none;   // once the head is complete: its framing
  std::uint64_t content_length = 0;
  bool expect_continue = false;
  bool sent_continue = false;
  bool streaming = false;         // the handler ran at the head; the body goes to `reader`
  bool close_after_body = false;  // streaming: the answer said close; close once the body is in
  body_reader reader;             // request::on_body's reader (may stay empty: the body is dropped)

  explicit request_work(const parser_limits& limits) : parser(limits) {}
  void reset() {
    parser.reset();
    head_len = 0;
    chunked = {};
    raw_pos = 0;
    chunked_body.clear();
    started = {};
    body_started = {};
    body = body_kind::none;
    content_length = 0;
    expect_continue = false;
    sent_continue = false;
    streaming = false;
    close_after_body = false;
    reader = nullptr;
  }
};

struct pending_request : request_work {
  using request_work::request_work;
  std::string buffer;  // the request's bytes from its first, not yet consumed
  // What `buffer` and `chunked_body` hold, in the server's budget (given back when deleted).
  detail::budget_holder holder;
};

// Per connection, in the engine's slot: an idle keep-alive connection holds 16 bytes here.
struct conn_state {
  pending_request* pending = nullptr;
  std::uint32_t served = 0;  // requests answered on this connection
  bool shutting_down = false;
  bool waiting = false;  // a deferred response is outstanding: serve nothing until it is done
  bool blocked = false;  // responses are piling up unread: serve nothing until they drain
};

// Past this many bytes queued for a client that does not read, the connection serves no more of
// its pipelined requests (and stops reading) until the queue drains: a client cannot make the
// server queue responses (or file descriptors of file responses) without bound.
constexpr std::size_t pipeline_backpressure = 256 * 1024;

// A deferred response's cancellation: shared by its target (any thread) and its connection's
// thread, which fires it from on_close.
struct cancel_slot {
  std::mutex mutex;
  std::function<void()> fn;
  bool gone = false;  // the connection closed while the response was outstanding
  bool done = false;  // the response finished: never fire
  // The connection's thread, on close.
  void fire() {
    std::function<void()> f;
    {
      std::lock_guard lock(mutex);
      if (done || gone) return;
      gone = true;
      f = std::move(fn);
    }
    if (f) f();
  }
};

// Per thread: the cancellation slots of this thread's connections that wait on a deferred
// response (few: one per such connection, dropped when it resumes or closes).
std::unordered_map<const nbio::conn*, std::shared_ptr<cancel_slot>>& waiting_cancels() {
  thread_local std::unordered_map<const nbio::conn*, std::shared_ptr<cancel_slot>> slots;
  return slots;
}

// A deferred response's way back to its connection: everything is posted to the connection's
// thread (never run inline), in order.
class conn_target final : public deferred_target {
 public:
  conn_target(nbio::conn_handle h, std::shared_ptr<server::shared> s,
              std::shared_ptr<cancel_slot> cancel)
      : h_(h), s_(std::move(s)), cancel_(std::move(cancel)) {}
  ~conn_target() override {
    // Destroyed without done() (the finish failed): the connection must not wait forever.
    if (!done_) post([](nbio::conn& c) { c.close(); });
  }
  void send(std::string bytes) override {
    post([b = std::move(bytes)](nbio::conn& c) { c.write(b); });
  }
  void send_file(int fd, std::uint64_t offset, std::uint64_t length) override {
    // The descriptor travels in the task and is closed with it, sent or dropped.
    struct owned_fd {
      explicit owned_fd(int f) : fd(f) {}
      owned_fd(const owned_fd&) = delete;
      owned_fd& operator=(const owned_fd&) = delete;
      ~owned_fd() { ::close(fd); }
      int fd;
    };
    auto file = std::make_shared<owned_fd>(fd);
    post([file, offset, length](nbio::conn& c) { c.send_file(file->fd, offset, length); });
  }
  void done(bool close) override;
  bool alive() const noexcept override {
    {
      std::lock_guard lock(cancel_->mutex);
      if (cancel_->gone) return false;  // on_close ran; the slot is freed a moment later
    }
    std::lock_guard lock(s_->deferred_mutex);
    return s_->open && h_.alive();
  }
  void on_cancel(std::function<void()> fn) override {
    {
      std::lock_guard lock(cancel_->mutex);
      if (cancel_->done) return;
      if (!cancel_->gone) {
        cancel_->fn = std::move(fn);
        return;
      }
    }
    fn();  // gone already
  }

 private:
  // Posts to the connection while the server is open; dropped once it is gone.
  void post(std::function<void(nbio::conn&)> fn) const {
    std::lock_guard lock(s_->deferred_mutex);
    if (s_->open) h_.post(std::move(fn));
  }

  nbio::conn_handle h_;
  std::shared_ptr<server::shared> s_;
  std::shared_ptr<cancel_slot> cancel_;
  bool done_ = false;
};

// Sends a response writer's bytes to the connection it is bound to, corked: the responses to
// the requests of one read (pipelining) collect here and go out in one write when the read is
// done, instead of one send() each. Bytes past cork_limit are written through.
struct conn_sink final : response_writer::sink {
  static constexpr std::size_t cork_limit = 64 * 1024;
  nbio::conn* c = nullptr;
  const std::shared_ptr<server::shared>* owner = nullptr;  // the server of the connection
  std::string corked;

  std::unique_ptr<deferred_target> make_deferred_target() override {
    if (!c || !owner) return nullptr;
    auto cancel = std::make_shared<cancel_slot>();
    waiting_cancels()[c] = cancel;
    return std::make_unique<conn_target>(c->handle(), *owner, std::move(cancel));
  }

  void send(std::string_view bytes) override {
    if (!c || !c->is_open()) return;
    if (corked.size() + bytes.size() > cork_limit) {
      uncork();
      if (bytes.size() > cork_limit) {
        c->write(bytes);
        return;
      }
    }
    corked.append(bytes);
  }
  // The body of a file server's response: handed to the kernel (sendfile), after the head.
  void send_file(int fd, std::uint64_t offset, std::uint64_t length) override {
    if (c && c->is_open()) {
      uncork();
      c->send_file(fd, offset, length);
    }
    ::close(fd);
  }
  bool can_hijack() const noexcept override { return c && c->is_open(); }
  std::size_t slot_capacity() const noexcept override { return c ? c->data_capacity() : 0; }
  bool client_connected() const noexcept override { return c && c->is_open(); }
  // Writes what is corked; before anything else is written or the connection closes.
  void uncork() {
    if (!corked.empty() && c && c->is_open()) c->write(corked);
    corked.clear();
  }
};

// Per thread (a loop, or a blocking-mode connection's thread): one request is served at a
// time, so these are reused by every request and allocate only while they grow.
struct thread_scratch {
  conn_sink sink;
  response_writer writer{sink};
  std::vector<header> fields;
  std::string body;  // a chunked body that arrived in several pieces
  std::unique_ptr<request_work> work;
  bool hijacked = false;  // the connection being served left HTTP: its conn_state is gone
};
thread_scratch& scratch(const parser_limits& limits) {
  thread_local thread_scratch s;
  // Sized for the server with the most fields; the parser stops at its own server's limit.
  if (s.fields.size() < limits.max_headers) s.fields.resize(limits.max_headers);
  if (!s.work) s.work = std::make_unique<request_work>(limits);
  return s;
}

// The server's own answers (a request error, a handler or stream_body predicate that throws
// before answering, an eviction under the buffer budget): the status, Date (RFC 9110 6.6.1: an
// origin server with a clock sends it in every response), a text body that says why, and
// Connection: close, for the connection closes after it. The error path only: it builds a
// string per answer.
void send_canned(nbio::conn& c, int status, std::string_view why) {
  std::string body = std::to_string(status);
  body += ' ';
  body += reason_phrase(status);
  if (!why.empty()) {
    body += ": ";
    body += why;
  }
  body += '\n';
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + ' ' + reason_phrase(status) + "\r\nDate: ";
  out += detail::http_date_now();
  out += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n\r\n";
  out += body;
  c.write(out);
  c.close_after_flush();
}

// The canned answer to a request error: status_of(ec), and why.
void send_error(nbio::conn& c, std::error_code ec) {
  send_canned(c, status_of(ec), ec.message());
}

// What a handler (or the stream_body predicate) that throws before answering gets.
void send_internal_error(nbio::conn& c) {
  send_canned(c, 500, {});
}

// The most a connection buffers of one chunked request: the head, the body twice over (data
// plus framing; chunk extensions can make framing as large as the data), and slack. Saturating:
// max_body may be "no limit".
std::size_t chunked_buffer_bound(const parser_limits& l) noexcept {
  constexpr std::size_t max = ~std::size_t{0};
  const std::uint64_t slack = l.max_header_bytes + 65536;
  if (l.max_body > (max - slack) / 2) return max;
  return static_cast<std::size_t>(2 * l.max_body + slack);
}

// Arms a read deadline counted from `since` (set to now the first time): the header timeout
// from a head's first byte, the body timeout from the head's end. Reads do not push it back, so
// a client trickling bytes is cut off on time. False when it has already passed.
bool arm_deadline(nbio::conn& c, steady::time_point& since, std::chrono::milliseconds limit) {
  const auto now = steady::now();
  if (since == steady::time_point{}) since = now;
  const auto left = limit - std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
  if (left <= std::chrono::milliseconds(0)) return false;
  c.set_read_deadline(left);
  return true;
}

}  // namespace

// The engine's handler for a server's connections (a friend of request).
class server_conn {
 public:
  using conn_data = conn_state;
  std::shared_ptr<server::shared> s;

  void on_open(nbio::conn& c) { c.set_read_deadline(s->config.read_header_timeout); }

  void on_data(nbio::conn& c, std::string_view bytes) {
    thread_scratch& t = scratch(s->parse_limits);
    t.sink.c = &c;
    t.sink.owner = &s;
    t.hijacked = false;
    receive(c, bytes, t);
    t.sink.uncork();
    t.sink.c = nullptr;
  }

  // A deferred response is complete (its bytes were posted before): go on with the requests
  // that waited, or close.
  void resume(nbio::conn& c, bool close) {
    conn_state& st = c.data<conn_state>();
    st.waiting = false;
    waiting_cancels().erase(&c);
    if (close || st.shutting_down) {
      c.close_after_flush();
      return;
    }
    if (c.read_paused()) c.resume_read();
    if (!st.pending) {
      c.set_read_deadline(s->config.idle_timeout);
      return;
    }
    on_data(c, {});  // the pipelined requests kept meanwhile
  }

  // The queue drained: a connection held back by unread responses goes on.
  void on_drained(nbio::conn& c) {
    conn_state& st = c.data<conn_state>();
    if (!st.blocked) return;
    st.blocked = false;
    if (c.read_paused()) c.resume_read();
    if (st.pending)
      on_data(c, {});
    else
      c.set_read_deadline(s->config.idle_timeout);
  }

  void on_close(nbio::conn& c, std::error_code cause) {
    conn_state& st = c.data<conn_state>();
    if (st.waiting) {
      auto& slots = waiting_cancels();
      if (auto it = slots.find(&c); it != slots.end()) {
        std::shared_ptr<cancel_slot> slot = std::move(it->second);
        slots.erase(it);
        slot->fire();
      }
    }
    if (st.pending && st.pending->streaming && st.pending->reader) {
      body_reader reader = std::move(st.pending->reader);
      st.pending->reader = nullptr;
      try {
        reader({}, true, cause);
      } catch (...) {  // nothing to answer any more
      }
    }
    delete st.pending;
    st.pending = nullptr;
  }

  // Graceful shutdown: an idle connection closes now; one in the middle of a request closes
  // after answering it.
  void on_shutdown(nbio::conn& c) {
    conn_state& st = c.data<conn_state>();
    st.shutting_down = true;
    if (!st.pending && !st.waiting) c.close_after_flush();
  }

 private:
  void receive(nbio::conn& c, std::string_view bytes, thread_scratch& t) {
    conn_state& st = c.data<conn_state>();
    if ((st.waiting || st.blocked) && !(st.pending && st.pending->streaming)) {
      // Pipelined bytes behind a deferred response (or unread responses) wait their turn; past
      // one head's worth, reading pauses until the response is finished.
      if (bytes.empty()) return;
      if (!st.pending) st.pending = new pending_request(s->parse_limits);
      st.pending->buffer.append(bytes);
      if (st.pending->buffer.size() > s->config.limits.max_header_bytes) c.pause_read();
      account(c, st, t);
      return;
    }
    if (!st.pending) {
      // Fast path: parse straight from the loop's read buffer. The scratch is shared by every
      // server on this thread: give it this server's limits.
      request_work& w = *t.work;
      w.parser = request_parser(s->parse_limits);
      const std::size_t used = serve(c, st, bytes, w, t);
      if (t.hijacked) {
        w.reset();
        return;
      }
      if ((used < bytes.size() || w.streaming) && c.is_open()) {
        // An incomplete request: from now on it has a buffer (and its progress) of its own.
        auto* p = new pending_request(s->parse_limits);
        static_cast<request_work&>(*p) = std::move(w);
        p->buffer.assign(bytes.substr(used));
        compact(*p);
        st.pending = p;
        account(c, st, t);
      }
      w.reset();
      return;
    }
    pending_request& p = *st.pending;
    p.buffer.append(bytes);
    const std::size_t used = serve(c, st, p.buffer, p, t);
    if (t.hijacked || !st.pending) return;
    if (!c.is_open()) {
      // Closing (answered an error, timed out): its buffer goes at the end of the loop turn;
      // it leaves the budget now, so it is not chosen for an eviction it no longer needs.
      p.holder.release();
      return;
    }
    if (used >= p.buffer.size() && !p.streaming) {
      delete st.pending;  // whole again: an idle connection owns no buffer
      st.pending = nullptr;
    } else {
      if (used > 0) p.buffer.erase(0, used);
      compact(p);
      account(c, st, t);
    }
  }

  // The buffer budget: records what the connection's pending request holds now. Past the
  // server's limit the connection chosen (this one, or the largest holder of this loop: see
  // http/buffer_budget.hpp) is answered and closed. Nothing may touch `st.pending` after.
  void account(nbio::conn& c, conn_state& st, thread_scratch& t) {
    pending_request& p = *st.pending;
    const std::size_t held = detail::heap_bytes(p.buffer) + detail::heap_bytes(p.chunked_body);
    nbio::conn* victim = p.holder.update(s->budget, c, held);
    if (!victim) return;
    t.sink.uncork();  // this read's earlier responses go before its eviction's answer
    evict(*victim);
  }

  // Frees what `v` (a connection of this server, on this thread) holds and closes it: with a
  // 431 (head) or 413 (body) when nothing of a response is under way, else without an answer
  // (one would interleave with the deferred or unread response, or follow a streamed body's).
  static void evict(nbio::conn& v) {
    conn_state& vst = v.data<conn_state>();
    pending_request* p = vst.pending;
    if (!p) return;
    if (vst.waiting || vst.blocked || p->streaming) {
      p->buffer = std::string();
      p->chunked_body = std::string();
      p->holder.release();
      v.close();  // on_close gives a streamed body's reader its last call
      return;
    }
    send_error(v, p->head_len == 0 ? errc::head_over_budget : errc::body_over_budget);
    delete p;
    vst.pending = nullptr;
  }

  // The handler took the connection (response_writer::hijack): the responses to the requests
  // before it go out, this server's state for the connection goes, and the connection moves to
  // its new handler with the bytes that followed the request. Nothing may touch `st` after.
  static void hand_over(nbio::conn& c, conn_state& st, std::string_view rest, thread_scratch& t) {
    t.sink.uncork();
    t.hijacked = true;
    std::string kept;  // `rest` may lie in the pending buffer, which goes now
    if (st.pending) {
      kept.assign(rest);
      rest = kept;
      delete st.pending;
      st.pending = nullptr;
    }
    const nbio::upgrade_target& to = *t.writer.hijack_target();
    std::function<void(nbio::conn&)> init = t.writer.take_hijack_init();
    try {
      const std::error_code ec = init ? c.rebind(to, rest, init) : c.rebind(to, rest);
      if (ec) c.close(ec);
    } catch (...) {  // from init or the new handler: the connection cannot go on
      c.close();
    }
  }

  // A chunked body in progress: the framing and data already decoded (the data is in
  // chunked_body) leave the buffer, so it holds the head and at most one read of undecoded
  // bytes, not the whole raw body.
  static void compact(pending_request& p) {
    if (p.raw_pos <= p.head_len) return;
    p.buffer.erase(p.head_len, p.raw_pos - p.head_len);
    p.raw_pos = p.head_len;
  }

  // What serving one request left the connection in.
  enum class outcome {
    next,  // serve the next request
    hold,  // keep the rest for later: a deferred response or unread responses
    gone,  // closing or handed over (hijack): everything is consumed, `st` may be gone
  };

  // Serves every complete request at the start of `data` (pipelining: in order, one at a
  // time); `w` holds the progress of the first one. Returns the bytes consumed: what is left
  // is the start of an incomplete request (or of a streamed body's next piece).
  std::size_t serve(nbio::conn& c, conn_state& st, std::string_view data, request_work& w,
                    thread_scratch& t) {
    const server_options& cfg = s->config;
    std::size_t pos = 0;
    while (pos < data.size() && c.is_open()) {
      const std::string_view in = data.substr(pos);
      if (w.streaming) {
        // A streamed body: its pieces go to the reader as they come.
        const std::size_t used = stream(c, st, in, w, t);
        if (!c.is_open()) return data.size();
        pos += used;
        if (w.streaming) {
          if (!arm_deadline(c, w.body_started, cfg.read_body_timeout))
            c.close(nbio::errc::read_timeout);
          return pos;
        }
        const bool close_now = w.close_after_body || (st.shutting_down && !st.waiting);
        w.reset();
        if (close_now) {  // the answer said close, or a graceful shutdown waited for the body
          t.sink.uncork();
          c.close_after_flush();
          return data.size();
        }
        if (st.waiting || st.blocked) {
          c.set_read_deadline(std::chrono::milliseconds(0));  // the body deadline is over
          return pos;
        }
        continue;
      }
      request_head head;
      bool parsed = false;  // `head` holds views into `in`
      if (w.head_len == 0) {
        const parse_result r = w.parser.parse(in, t.fields, head);
        if (r.status == parse_status::error) {
          t.sink.uncork();
          send_error(c, r.error);
          return data.size();
        }
        if (r.status == parse_status::incomplete) {
          if (!arm_deadline(c, w.started, cfg.read_header_timeout))
            c.close(nbio::errc::read_timeout);
          return pos;
        }
        parsed = true;
        w.head_len = r.consumed;
        w.body = head.body;
        w.content_length = head.content_length;
        w.expect_continue = head.expect_continue;
        if (w.body != body_kind::none && cfg.stream_body) {
          // The handler runs now and the body follows it (request::on_body).
          request probe(head, {}, &c);
          bool streamed = false;
          try {
            streamed = cfg.stream_body(probe);
          } catch (...) {  // as a handler that throws before answering
            t.sink.uncork();
            send_internal_error(c);
            return data.size();
          }
          if (streamed) {
            pos += w.head_len;
            if (start_stream(c, st, head, data.substr(pos), w, t) == outcome::gone)
              return data.size();
            continue;
          }
        }
        // The parser allowed max_streamed_body; a collected body has the smaller limit.
        if (w.body == body_kind::length && w.content_length > cfg.limits.max_body) {
          t.sink.uncork();
          send_error(c, errc::body_too_large);
          return data.size();
        }
      }
      // Below, the head is known by what was kept of it: a body arriving in many reads does not
      // make the head be parsed again each time (only once more, for its views, when whole).

      // The body: whole in `in`, or wait for more.
      std::string_view body;
      std::size_t message_len = w.head_len;
      bool whole = true;
      if (w.body == body_kind::length) {
        whole = in.size() - w.head_len >= w.content_length;
        body = in.substr(w.head_len, static_cast<std::size_t>(w.content_length));
        message_len += body.size();
      } else if (w.body == body_kind::chunked) {
        if (w.raw_pos == 0) {
          w.raw_pos = w.head_len;
          w.chunked = body_decoder(body_kind::chunked, 0, cfg.limits);
        }
        std::string_view rest = in.substr(w.raw_pos);
        std::string_view single;  // the body when it came as one piece (no copy)
        std::size_t pieces = 0;
        parse_status status = parse_status::incomplete;
        for (;;) {
          const body_result b = w.chunked.next(rest);
          if (b.status == parse_status::error) {
            t.sink.uncork();
            send_error(c, b.error);
            return data.size();
          }
          if (!b.data.empty()) {
            if (pieces++ == 0 && w.chunked_body.empty()) {
              single = b.data;
            } else {
              if (pieces == 2 && w.chunked_body.empty()) w.chunked_body.assign(single);
              w.chunked_body.append(b.data);
            }
          }
          rest.remove_prefix(b.consumed);
          w.raw_pos += b.consumed;
          status = b.status;
          if (status != parse_status::incomplete || (b.consumed == 0 && b.data.empty())) break;
        }
        if (status == parse_status::complete) {
          body = pieces == 1 && w.chunked_body.empty() ? single : std::string_view(w.chunked_body);
          message_len = w.raw_pos;
        } else {
          // Not whole: keep what was decoded, the framing bytes already decoded stay behind
          // raw_pos. A run of data decoded here still points into `in`: copy it.
          if (pieces == 1 && w.chunked_body.empty()) w.chunked_body.assign(single);
          whole = false;
          // Framing without data can grow the buffer: bound what one body may take.
          if (in.size() > chunked_buffer_bound(cfg.limits)) {
            t.sink.uncork();
            send_error(c, errc::body_too_large);
            return data.size();
          }
        }
      }
      if (!whole) {
        if (w.expect_continue && !w.sent_continue) {
          w.sent_continue = true;
          t.sink.uncork();
          c.write("HTTP/1.1 100 Continue\r\n\r\n");
        }
        if (!arm_deadline(c, w.body_started, cfg.read_body_timeout))
          c.close(nbio::errc::read_timeout);
        return pos;
      }

      // A whole request: answer it.
      if (!parsed) {
        w.parser.reset();
        if (w.parser.parse(in.substr(0, w.head_len), t.fields, head).status !=
            parse_status::complete) {  // cannot happen: it parsed before
          c.close();
          return data.size();
        }
      }
      pos += message_len;
      const outcome o = answer(c, st, head, body, nullptr, data.substr(pos), t);
      if (o == outcome::gone) return data.size();  // `w` may be gone with the connection's state
      w.reset();  // after the handler: `body` may lie in w.chunked_body
      if (o == outcome::hold) return pos;
    }
    // Everything consumed: wait for the next request.
    if (c.is_open() && !w.streaming) c.set_read_deadline(cfg.idle_timeout);
    return pos;
  }

  // Runs the handler for a request whose body is collected (`body`) or streamed (`streamed`:
  // the request's progress, whose reader request::on_body fills). `rest` is what follows the
  // request in the buffer.
  outcome answer(nbio::conn& c, conn_state& st, const request_head& head, std::string_view body,
                 request_work* streamed, std::string_view rest, thread_scratch& t) {
    const server_options& cfg = s->config;
    request req(head, body, &c);
    if (streamed) req.reader_ = &streamed->reader;
    response_writer& rw = t.writer;
    ++st.served;
    const bool last =
        st.shutting_down || (cfg.max_requests_per_conn && st.served >= cfg.max_requests_per_conn);
    rw.begin(head.version_minor, head.method == "HEAD", head.keep_alive && !last);
    const std::size_t corked_before = t.sink.corked.size();
    try {
      s->h(rw, req);
    } catch (...) {
      // A handler that throws gets a 500 if it had not answered yet. One that deferred has
      // handed its response over (the deferred side answers). One that flushed is cut off:
      // the responses to earlier requests of this read go out, then the connection closes.
      if (rw.head_sent() && !rw.deferred()) {
        t.sink.corked.resize(std::min(t.sink.corked.size(), corked_before));
        t.sink.uncork();
        end_reader(streamed, nbio::errc::local_close);
        c.close();
        return outcome::gone;
      }
      if (!rw.deferred()) {
        rw.begin(head.version_minor, head.method == "HEAD", false);
        rw.write_header(500);
        rw.write("500 Internal Server Error\n");
      }
    }
    rw.finish();
    s->served.fetch_add(1, std::memory_order_relaxed);
    if (rw.hijacked()) {
      end_reader(streamed, nbio::errc::local_close);  // the body belongs to the new protocol
      hand_over(c, st, rest, t);
      return outcome::gone;
    }
    if (rw.deferred()) {
      // Answered later: serve nothing until then; what is left, and what still comes, waits
      // in pending. Reading goes on (up to a bound), so a client that leaves is noticed.
      st.waiting = true;
      c.set_read_deadline(std::chrono::milliseconds(0));
      return outcome::hold;
    }
    if (rw.closes_after()) {
      t.sink.uncork();
      if (streamed && streamed->reader) {
        // The reader still wants the body: close once it is in.
        streamed->close_after_body = true;
        return outcome::next;
      }
      c.close_after_flush();
      return outcome::gone;
    }
    if (!rest.empty() && c.queued_bytes() > pipeline_backpressure) {
      // The client is not reading its responses: keep the rest for when it has.
      st.blocked = true;
      c.pause_read();
      c.set_read_deadline(std::chrono::milliseconds(0));
      return outcome::hold;
    }
    return outcome::next;
  }

  // A streamed body's reader, if any, gets its last call (with `why`) and is dropped.
  static void end_reader(request_work* w, std::error_code why) noexcept {
    if (!w || !w->reader) return;
    body_reader reader = std::move(w->reader);
    w->reader = nullptr;
    w->streaming = false;
    try {
      reader({}, true, why);
    } catch (...) {  // nothing to answer any more
    }
  }

  // A head whose body is streamed: the handler runs now, then `w` streams the body (`body`:
  // what of it is here already) to the reader it set.
  outcome start_stream(nbio::conn& c, conn_state& st, const request_head& head,
                       std::string_view body, request_work& w, thread_scratch& t) {
    const server_options& cfg = s->config;
    w.streaming = true;
    w.chunked = body_decoder(w.body, w.content_length, s->parse_limits);
    w.body_started = steady::now();
    if (w.expect_continue && body.empty()) {
      // The client waits for this before it sends the body: it must come before any answer
      // (a 1xx after the final response would be read as the next request's).
      w.sent_continue = true;
      t.sink.uncork();
      c.write("HTTP/1.1 100 Continue\r\n\r\n");
    }
    const outcome o = answer(c, st, head, {}, &w, body, t);
    if (o == outcome::gone) return o;
    // A deferred answer has no deadline; the body does until it is in.
    if (!arm_deadline(c, w.body_started, cfg.read_body_timeout)) {
      end_reader(&w, nbio::errc::read_timeout);
      c.close(nbio::errc::read_timeout);
      return outcome::gone;
    }
    return o;
  }

  // Hands what `in` holds of a streamed body to its reader. Returns the bytes consumed; the
  // request stops streaming when its body is complete. A body error is the reader's last call
  // and closes the connection (after the response, when one was sent). Every reader gets one
  // last call, whatever happens.
  std::size_t stream(nbio::conn& c, conn_state& st, std::string_view in, request_work& w,
                     thread_scratch& t) {
    std::size_t used = 0;
    for (;;) {
      const body_result b = w.chunked.next(in.substr(used));
      if (b.status == parse_status::error) {
        end_reader(&w, b.error);
        w.reset();
        t.sink.uncork();
        if (st.waiting)
          c.close(b.error);
        else
          c.close_after_flush();
        return in.size();
      }
      used += b.consumed;
      try {
        if (!b.data.empty() && w.reader) w.reader(b.data, false, {});
        if (c.is_open() && b.status == parse_status::complete) {
          body_reader reader = std::move(w.reader);
          w.streaming = false;
          w.reader = nullptr;
          if (reader) reader({}, true, {});
          return used;
        }
      } catch (...) {  // a reader that throws ends the connection, as a handler that flushed
        end_reader(&w, nbio::errc::local_close);
        w.reset();
        t.sink.uncork();
        c.close();
      }
      if (!c.is_open()) {
        end_reader(&w, nbio::errc::local_close);  // the reader closed it
        w.reset();
        return in.size();
      }
      if (b.consumed == 0 && b.data.empty()) return used;
    }
  }
};

void conn_target::done(bool close) {
  done_ = true;
  {
    std::lock_guard lock(cancel_->mutex);
    cancel_->done = true;
    cancel_->fn = nullptr;
  }
  post([s = s_, close](nbio::conn& c) { server_conn{s}.resume(c, close); });
}

server::server(nbio::engine& eng, handler h, server_options config)
    : eng_(eng), shared_(std::make_shared<shared>()) {
  if (!h) throw std::invalid_argument("nbio::http::server: empty handler");
  shared_->h = std::move(h);
  shared_->config = config;
  shared_->parse_limits = config.limits;
  shared_->budget.limit = config.max_buffered_bytes;
  if (config.stream_body)
    shared_->parse_limits.max_body = std::max(config.limits.max_body, config.max_streamed_body);
}

server::server(nbio::engine& eng, const serve_mux& mux, server_options config)
    : server(eng, mux.as_handler(), std::move(config)) {
  mux_ = &mux;
}

server::~server() {
  // From now on deferred responses finishing elsewhere are dropped (the engine goes next).
  std::lock_guard lock(shared_->deferred_mutex);
  shared_->open = false;
}

nbio::listener& server::listen(std::string_view addr, nbio::listen_options options) {
  options.conn.write_timeout = shared_->config.write_timeout;
  // A response cut short by a rejected write would desync the connection: close it instead.
  options.conn.on_overflow = nbio::overflow_policy::close;
  options.conn.max_write_queue = shared_->config.max_write_queue;
  const std::uint32_t takeover = mux_ ? mux_->takeover_bytes() : shared_->h.takeover_bytes();
  options.conn.reserve_data = std::max(options.conn.reserve_data, takeover);
  return eng_.listen(addr, server_conn{shared_}, options);
}

const server_options& server::options() const noexcept {
  return shared_->config;
}

std::uint64_t server::requests_served() const noexcept {
  return shared_->served.load(std::memory_order_relaxed);
}

server_stats server::stats() const noexcept {
  server_stats out;
  out.requests_served = shared_->served.load(std::memory_order_relaxed);
  out.buffered_bytes = shared_->budget.held.load(std::memory_order_relaxed);
  out.buffering_connections = shared_->budget.holders.load(std::memory_order_relaxed);
  out.budget_evictions = shared_->budget.evictions.load(std::memory_order_relaxed);
  return out;
}

}  // namespace nbio::http
