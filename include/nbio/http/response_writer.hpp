// Public. How a handler answers (Go's http.ResponseWriter), and the handler type itself.
//
//   void hello(nbio::http::response_writer& w, nbio::http::request& r) {
//     w.set_header("Content-Type", "text/plain");
//     w.write("hello\n");   // buffered; status 200 unless write_header() said otherwise
//   }                       // returns: sent with Content-Length in one write
//
// A response is whole by default: the head and the buffered body go out in one write when the
// handler returns, with Content-Length. flush() turns it into a streamed response: the head
// goes out at once with Transfer-Encoding: chunked (HTTP/1.1; with HTTP/1.0 the body runs until
// the connection closes) and every later write()+flush() sends a chunk. HEAD responses carry
// the head only; 1xx, 204 and 304 never carry a body. The server adds Date (cached per second)
// and, when the body is not empty and no Content-Type was set, "text/plain; charset=utf-8".
//
// Thread affinity: the thread that runs the handler, during the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace nbio {
class upgrade_target;
class conn;
}  // namespace nbio

namespace nbio::http {

class request;
class response_writer;
class deferred_response;
class deferred_target;

// A handler (Go's http.Handler): anything callable as f(response_writer&, request&), called
// once per request; it keeps Go's shape since it is one function. It carries one more fact,
// which a server needs before the first request: takeover_bytes, the slot room (bytes of
// per-connection state) a protocol it hands connections over to keeps there (hijack onto a
// upgrade target: websocket::server::upgrade() sets it). A listener reserves the largest of its
// handler's, or of its serve_mux's routes', so a user never sizes that by hand.
class handler {
 public:
  handler() = default;
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, handler> &&
           std::is_invocable_v<F&, response_writer&, request&>)
      handler(F f, std::uint32_t takeover_bytes = 0)  // NOLINT: implicit, as std::function
      : fn_(std::move(f)), takeover_bytes_(takeover_bytes) {}

  void operator()(response_writer& w, request& r) const { fn_(w, r); }
  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  std::uint32_t takeover_bytes() const noexcept { return takeover_bytes_; }

 private:
  std::function<void(response_writer&, request&)> fn_;
  std::uint32_t takeover_bytes_ = 0;
};

class response_writer {
 public:
  // Where the bytes of a response go: a connection, or a recorder in tests.
  class sink {
   public:
    virtual void send(std::string_view bytes) = 0;
    // For defer(): where the deferred response goes; null when this sink cannot defer.
    virtual std::unique_ptr<deferred_target> make_deferred_target() { return nullptr; }
    // `length` bytes of the open file `fd` from `offset`, after what was sent so far. The
    // sink owns `fd` from here on (it closes it). The default reads the file and send()s it;
    // the server's sink hands it to the kernel (sendfile) instead.
    virtual void send_file(int fd, std::uint64_t offset, std::uint64_t length);
    // Whether hijack() may take the connection (the server's sink, on the connection's thread).
    virtual bool can_hijack() const noexcept { return false; }
    // The slot room the connection has for a hijack's new handler (conn::data_capacity()).
    virtual std::size_t slot_capacity() const noexcept { return 0; }
    // Whether the client is still there, and a call for when it leaves (deferred responses).
    virtual bool client_connected() const noexcept { return true; }
    virtual void on_client_gone(std::function<void()>) {}

   protected:
    ~sink() = default;
  };

  explicit response_writer(sink& out) noexcept : sink_(&out) {}
  response_writer(const response_writer&) = delete;
  response_writer& operator=(const response_writer&) = delete;
  ~response_writer();

  // Header fields, until the head is sent (later changes are ignored). Names compare
  // case-insensitively. A name that is not a token is dropped; CR, LF and NUL in a value are
  // replaced by spaces (no response splitting through a value taken from a request).
  void set_header(std::string_view name, std::string_view value);  // replaces that name's fields
  void add_header(std::string_view name, std::string_view value);
  void del_header(std::string_view name) noexcept;
  std::string_view get_header(std::string_view name) const noexcept;

  // The status (once; later calls are ignored). Without it the first write() means 200.
  void write_header(int status) noexcept;
  // Appends to the body: buffered until the handler returns or flush().
  void write(std::string_view data);
  // Sends the head (if not yet) and the body buffered so far, as a chunk.
  void flush();
  // The body is `length` bytes of the open file `fd` from `offset` (a file server's reply),
  // sent when the handler returns without being copied through user space (sendfile). Instead
  // of write(): throws std::logic_error after write() or flush(). The head gets Content-Length
  // (unless one was set); HEAD responses leave the body out. `fd` is dup()ed: the caller keeps
  // its own. Errors: the errno of dup() (EMFILE), then nothing is sent from the file.
  std::error_code send_file(int fd, std::uint64_t offset, std::uint64_t length);
  // The connection closes after this response (Connection: close).
  void close_after() noexcept { close_after_ = true; }
  // Discards the status, fields and body set so far (to answer an error instead). False, and
  // nothing changes, once the head went out.
  bool reset() noexcept;
  // Hands the response over to be finished later, from any thread (a handler waiting on an
  // upstream, or run on a thread_pool): the returned object carries the headers and status set
  // so far and its own writer; this writer is done. The request's views die when the handler
  // returns, so copy what the rest needs first. The connection serves nothing more until the
  // deferred response is finished (pipelined requests wait, in order; it keeps reading up to
  // limits.max_header_bytes of them, so a client that leaves is noticed: client_connected()).
  // Throws std::logic_error after the response started (flush()) or when the writer cannot
  // defer.
  deferred_response defer();
  bool deferred() const noexcept { return deferred_; }
  // For handlers on a thread_pool (whose writer is a deferred response's): whether the client
  // is still connected, and a call for when it leaves, as deferred_response's. A writer used
  // inline always says connected and never calls (its client cannot leave during the call).
  bool client_connected() const noexcept { return sink_->client_connected(); }
  void on_client_gone(std::function<void()> fn) { sink_->on_client_gone(std::move(fn)); }
  // Takes the connection away from HTTP (Go's http.Hijacker): for protocol upgrades (WebSocket)
  // and tunnels (CONNECT). Nothing of this response is sent. When the handler returns, the
  // server sends the responses to the requests before this one, forgets the connection (it
  // stops counting as an HTTP connection and gets no more timeouts from the server) and moves
  // it onto `to` with nbio::conn::rebind: init(conn&) runs first (write the upgrade's answer,
  // such as "101 Switching Protocols", and fill in `to`'s conn_data there), then `to`'s
  // on_open, then its on_data with the bytes the client sent after this request. The slot
  // must hold `to`'s state (upgrade_target::slot_bytes()): the route's handler carries that as
  // its takeover_bytes, and http::server::listen reserves it. Only from a handler running
  // inline on the connection's thread (not a thread_pool, a deferred response or a recorder),
  // before the response started, into a slot with room for `to`: throws std::logic_error
  // otherwise (answered 500, the message naming the missing takeover_bytes).
  void hijack(const nbio::upgrade_target& to, std::function<void(nbio::conn&)> init = {});
  bool hijacked() const noexcept { return hijack_to_ != nullptr; }
  // For the server, once the handler returned: where the connection goes, and the init.
  const nbio::upgrade_target* hijack_target() const noexcept { return hijack_to_; }
  std::function<void(nbio::conn&)> take_hijack_init() noexcept { return std::move(hijack_init_); }

  int status() const noexcept { return status_; }
  bool head_sent() const noexcept { return head_sent_; }
  bool closes_after() const noexcept { return close_after_; }
  std::size_t body_bytes() const noexcept { return body_bytes_; }

  // For the server (and the recorder): starts a response to a request, and finishes it after
  // the handler returned (sends what is left).
  void begin(int version_minor, bool head_request, bool keep_alive) noexcept;
  void finish();

 private:
  struct field {
    std::string name;
    std::string value;
  };
  void send_head(bool streamed);
  bool body_allowed() const noexcept;
  std::size_t find(std::string_view name) const noexcept;

  sink* sink_;
  std::vector<field> fields_;  // [0, field_count_) in use; the rest keep their capacity
  std::size_t field_count_ = 0;
  std::string body_;            // buffered body
  std::string out_;             // the bytes of one send (head, chunk framing, body)
  std::size_t body_bytes_ = 0;  // written by the handler in all
  int status_ = 0;
  int version_minor_ = 1;
  bool head_request_ = false;
  bool close_after_ = false;
  bool head_sent_ = false;
  bool chunked_ = false;
  bool finished_ = false;
  bool deferred_ = false;
  int file_fd_ = -1;  // send_file(): our dup, handed to the sink on finish()
  const nbio::upgrade_target* hijack_to_ = nullptr;
  std::function<void(nbio::conn&)> hijack_init_;
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_length_ = 0;
};

// Where a deferred response goes (the server: its connection, from any thread).
class deferred_target {
 public:
  virtual ~deferred_target() = default;
  // Any thread, in order: the response's bytes.
  virtual void send(std::string bytes) = 0;
  // Any thread, in order: `length` bytes of the file `fd` (owned from here on) from `offset`.
  // The default reads the file and send()s it; the server's target hands it to sendfile.
  virtual void send_file(int fd, std::uint64_t offset, std::uint64_t length);
  // Any thread, once, after the last send(): the response is complete; `close` when the
  // connection must close after it.
  virtual void done(bool close) = 0;
  // Whether the client is still connected (a snapshot).
  virtual bool alive() const noexcept = 0;
  // Any thread, at most once: fn runs once if the connection closes before done(), on the
  // connection's thread (at once, on this thread, when it is closed already). The default
  // never calls it.
  virtual void on_cancel(std::function<void()> fn) { (void)fn; }
};

// A response finished later (response_writer::defer). Movable; one thread at a time.
class deferred_response {
 public:
  deferred_response() noexcept;
  deferred_response(deferred_response&&) noexcept;
  deferred_response& operator=(deferred_response&&) noexcept;
  // Not finished: finishes it (with 500 when nothing was written), so a connection never
  // waits for a response that was dropped.
  ~deferred_response();

  explicit operator bool() const noexcept { return s_ != nullptr; }
  // Its writer, used as in a handler: set_header, write_header, write, flush.
  response_writer& writer();
  // Sends what is left and lets the connection go on with its next request. Once.
  void finish();
  // False once the client is gone (its connection closed): the work may stop.
  bool client_connected() const noexcept;
  // Request cancellation (Go's Request.Context().Done()): fn runs once if the client goes away
  // (its connection closes: it left, timed out, or the server stopped) before finish(), on the
  // connection's thread, or at once on this thread when it is gone already. Cancel the upstream
  // call there; finishing afterwards is harmless (the bytes are dropped). One fn per response:
  // a second call is ignored.
  void on_client_gone(std::function<void()> fn);

  struct state;  // private

 private:
  friend class response_writer;
  explicit deferred_response(std::unique_ptr<state> s) noexcept;
  std::unique_ptr<state> s_;
};

// A response_writer that records the response (Go's httptest.ResponseRecorder): run a handler
// against a request without a socket, then look at what it answered.
class response_recorder final : private response_writer::sink {
  struct target;

 public:
  explicit response_recorder(int version_minor = 1, bool head_request = false);
  response_writer& writer() noexcept { return writer_; }
  // Finishes the response (as the server does when the handler returns) and parses it (with
  // the default parser_limits: a body over 8 MiB or over 100 fields records status 0). A
  // deferred response must be finished before.
  void finish();

  // After finish(): what went out.
  const std::string& raw() const noexcept { return raw_; }
  int status() const noexcept { return status_; }
  std::string header(std::string_view name) const;
  const std::string& body() const noexcept { return body_; }

 private:
  void send(std::string_view bytes) override { raw_.append(bytes); }
  std::unique_ptr<deferred_target> make_deferred_target() override;

  response_writer writer_;
  std::mutex mutex_;  // deferred responses may record from other threads
  std::string raw_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> headers_;
  int status_ = 0;
  bool head_request_;
};

}  // namespace nbio::http
