// Public. An HTTP/1.1 client on an engine (Go's http.Client): http:// and https:// URLs,
// keep-alive connection pools per host, timeouts, redirects, and streamed request and response
// bodies.
//
//   nbio::engine eng;
//   eng.start();
//   nbio::http::client cl(eng);
//   cl.send({.url = "http://127.0.0.1:8080/hello"},
//           [](std::error_code ec, nbio::http::client_response&& r) {  // on a loop thread
//             if (!ec) std::printf("%d %s", r.status, r.body.c_str());
//           });
//   std::error_code ec;  // or, from a thread that is not one of the engine's loops:
//   auto r = cl.fetch({.method = "POST", .url = "http://127.0.0.1:8080/echo", .body = "hi"}, ec);
//
// HTTPS: an https:// URL (port 443 by default) runs its connections through TLS (nbio/tls),
// with client_options::tls as the context, or, when that is null, a default one made on the
// first https:// request: the system's trust store, host-name checking, ALPN "http/1.1":
//   nbio::http::client cl(eng, {.tls = nbio::tls::context::client({.ca_file = "ca.pem",
//                                                                   .alpn = {"http/1.1"}})});
// The name sent as SNI and checked against the certificate is the URL's host (unless the
// context names one). A certificate the client refuses, or another failed handshake, ends the
// request with the TLS layer's error (nbio/tls/error.hpp: tls::is_verify_error(ec), and
// ec.message() with OpenSSL's reason, "certificate verify failed: certificate has expired").
// The TLS context resumes sessions across the client's connections to a server.
//
// Connections: each engine loop keeps its own pool per scheme, host and port (http:// and
// https:// to the same host:port never share a connection), touched only by that loop's
// thread (no lock on the request path). send() from a loop thread of this engine uses that
// loop; from any other thread it posts the request to the host's home loop (chosen by a hash
// of scheme, host and port, so sequential requests from outside find the connection the last
// one left, and different hosts spread over the loops). With max_conns_per_host set, every
// request to a host runs on its home loop, so the cap and its FIFO queue are exact. A request
// takes the most recently used idle connection, else waits for one while a new one is dialed
// (at most one dial per waiting request; the first connection to become free or open serves
// the oldest waiter). A
// response that allows it (HTTP/1.1 keep-alive, no Connection: close, not HTTP/1.0 without
// keep-alive, body not delimited by the close) returns its connection to the pool, where it is
// closed after idle_timeout; at most max_idle_per_host stay idle per loop and host.
//
// Retries (Go's rule): a request that fails on a reused connection before any byte of its
// response arrived (the server closed the idle connection: EOF, ECONNRESET, EPIPE) is sent
// again on another connection, when its method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
// DELETE) or none of its body was sent. Each such failure drops a stale connection, so this
// ends; a failure on a fresh connection is final.
//
// Redirects (max_redirects > 0): 301, 302 and 303 are followed with GET and no body (HEAD stays
// HEAD), 307 and 308 with the same method and body. A request with a body_source is not
// replayed: its 307/308 is returned as the response. Location is resolved against the current
// URL and may switch between http:// and https://; Authorization (and a Host set by the caller)
// are dropped when the scheme, host or port changes. Past max_redirects the request fails with
// client_errc::too_many_redirects.
//
// Errors (done's std::error_code): client_errc below (URL, request, redirect, timeout and
// truncation errors); nbio::http::errc for a malformed or over-limit response (bad_status_line,
// headers_too_large, body_too_large, ...); nbio::errc for connect_timeout, resolve_failed and
// shutdown; errno codes (ECONNREFUSED, ECONNRESET) from the socket; nbio::tls::tls_category() codes
// for a failed TLS handshake (a refused certificate). On an error the response holds what had
// arrived (status 0 when nothing did).
//
// Thread affinity: send() and fetch() from any thread (fetch() not from one of the engine's
// loop threads: it throws std::logic_error there, as it would wait for itself). `done`, and
// a request's body_source and on_body, run on the loop thread that owns the connection: the
// calling loop, or the home loop as above (after a redirect to another host with
// max_conns_per_host set, that host's loop). Errors found before anything is sent (bad URL,
// method or header, unsupported scheme, engine not running) call `done` at once, on the
// calling thread, before send() returns. `done`, body_source and on_body must not throw.
//
// Lifetime: every request ends with exactly one call of `done`. Requests in flight when the
// engine stops end with nbio::errc::shutdown (on the loop, or, for one that had not reached its
// loop yet, on the thread that destroys the engine). Destroy the client after stopping the
// engine, or while no request is in flight: it closes its idle connections; its pools live on
// until the engine is destroyed (the engine's dialer for the client refers to them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "nbio/engine/engine.hpp"
#include "nbio/http/parser.hpp"
#include "nbio/tls/context.hpp"

namespace nbio::http {

// The client's own errors (its category is "nbio.http.client").
enum class client_errc {
  bad_url = 1,             // not http[s]://host[:port][/path][?query], or a control byte or space
  unsupported_scheme,      // a scheme other than http:// and https://
  bad_method,              // the method is not a token
  bad_header,              // a header name that is not a token, or CR, LF, NUL in a value
  too_many_redirects,      // more than max_redirects redirects were followed
  bad_redirect,            // a 3xx whose Location cannot be resolved to an http(s):// URL
  closed_before_response,  // the connection closed before any byte of the response
  truncated_response,      // the connection closed in the middle of the response
  request_timeout,         // request_timeout passed (equivalent to std::errc::timed_out)
};

const std::error_category& client_category() noexcept;

inline std::error_code make_error_code(client_errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

struct client_options {
  // From the dial to the established connection (nbio::errc::connect_timeout past it).
  std::chrono::milliseconds connect_timeout{10'000};
  // The whole exchange: from send() (waiting for a connection included) to the last byte of
  // the response body, redirects included (client_errc::request_timeout). 0: none.
  std::chrono::milliseconds request_timeout{30'000};
  // A pooled keep-alive connection unused this long is closed.
  std::chrono::milliseconds idle_timeout{90'000};
  // Connections (open and being dialed) per scheme, host and port; requests past it wait in
  // FIFO order. 0: no cap (Go's default).
  std::size_t max_conns_per_host = 0;
  // Idle connections kept per scheme, host and port and loop; more are closed when they become
  // idle.
  std::size_t max_idle_per_host = 16;
  // Response limits: head (status line, fields; 64 KiB, above the server's 16 KiB: responses
  // carry large Set-Cookie fields) and max_body for a collected body
  // (http::errc::body_too_large past it). A body streamed to on_body has no size limit.
  parser_limits limits{.max_header_bytes = 64u << 10, .max_body = 64u << 20};
  // Redirects followed per request (Go's 10); 0: the 3xx is returned as the response.
  int max_redirects = 10;
  // Sent unless the request sets User-Agent itself; empty: none.
  std::string user_agent = "nbio";
  // The TLS context of https:// connections (nbio::tls::context::client(...); offer ALPN
  // "http/1.1" in it, or nothing). Null: a default one, made on the first https:// request,
  // that verifies against the system's trust store and offers ALPN "http/1.1".
  std::shared_ptr<nbio::tls::context> tls{};
};

struct client_request {
  std::string method = "GET";
  std::string url{};  // "http[s]://host[:port]/path?query"; a fragment is dropped
  // Sent in order after Host and User-Agent. Host overrides the URL's authority, User-Agent
  // the config's; Content-Length and Transfer-Encoding are the client's (set by it, dropped
  // here). "Connection: close" makes the connection close after the response.
  std::vector<std::pair<std::string, std::string>> headers{};
  // Sent with Content-Length (also "Content-Length: 0" for POST, PUT and PATCH).
  std::string body{};
  // Instead of `body`: a body streamed with Transfer-Encoding: chunked. Called on the
  // connection's thread first after the head, then each time what it gave has been handed to
  // the kernel; it appends the next piece to `out` (empty is fine) and returns false after the
  // last one.
  std::function<bool(std::string& out)> body_source{};
  // When set, the response body is delivered piece by piece as it is decoded (views valid
  // during the call) instead of being collected in client_response::body, with no size limit.
  std::function<void(std::string_view piece)> on_body{};
  // Overrides client_options::request_timeout for this request (0: none).
  std::optional<std::chrono::milliseconds> timeout{};
};

struct client_response {
  int status = 0;
  std::string reason{};
  int version_minor = 1;                                       // HTTP/1.<version_minor>
  std::vector<std::pair<std::string, std::string>> headers{};  // in order received
  std::string body{};                                          // empty when the request set on_body
  std::string url{};  // the URL that answered (the last one after redirects)

  // The value of the first field named `name` (case-insensitive); "" when absent.
  std::string_view header(std::string_view name) const noexcept;
};

class client {
 public:
  using done_handler = std::function<void(std::error_code, client_response&&)>;

  // Setup, any thread. The engine must outlive the client; requests need it running.
  explicit client(nbio::engine& eng, client_options config = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Any thread. Sends `req` and calls `done` exactly once with the response or the error (see
  // the top of this header for where it runs).
  void send(client_request req, done_handler done);
  // Any thread but the engine's loop threads (std::logic_error there). send(), then waits for
  // `done`: returns the response, with `ec` set to the error.
  client_response fetch(client_request req, std::error_code& ec);

  const client_options& options() const noexcept;

  struct shared;  // what the client's connections and queued requests refer to (private)

 private:
  nbio::engine& eng_;
  std::shared_ptr<shared> shared_;
};

}  // namespace nbio::http

template <>
struct std::is_error_code_enum<nbio::http::client_errc> : std::true_type {};
