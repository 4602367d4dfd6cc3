// Private. The HTTP client's state: one exchange per request, a pool per loop and host, the
// connection handler. client.cpp has the API, URLs and request framing; client_conn.cpp the
// pools and the connection handler.
//
// Threads: everything here but client::shared's constants belongs to one loop and is touched
// only by that loop's thread (an exchange belongs to the loop it was posted to): no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nbio/http/client.hpp"

namespace nbio::http {

namespace detail {

struct host_pool;
struct loop_state;

// A URL split for the client: what is dialed, what goes in Host, and the request target.
struct url_parts {
  std::string dial;       // "host:port" or "[v6]:port": what is dialed (and the TLS name's host)
  std::string key;        // "http://host:port" or "https://host:port": the pool key
  std::string authority;  // the Host field: the URL's authority as written
  std::string target;     // "/path?query"
  bool tls = false;       // https://
};
std::error_code parse_url(std::string_view url, url_parts& out);
// A Location resolved against the URL it came from (RFC 3986 5.2, without userinfo).
std::string resolve_reference(std::string_view base, std::string_view ref);
// Checks the method and the header fields: nothing that could split the request.
std::error_code validate_request(const client_request& req);
// The request head, and the body too when it is small (Content-Length framing).
void serialize_head(const client_request& req, const url_parts& url, const client_options& cfg,
                    std::string& out);
bool is_idempotent(std::string_view method) noexcept;
// Bodies up to this size go out in the head's write; larger ones in pieces of this size, each
// once the kernel has taken the previous one (the write queue stays small).
inline constexpr std::size_t inline_body_max = 64 * 1024;

// One request from send() to done: the request, its progress on a connection, the response.
struct exchange {
  client::shared* owner = nullptr;
  client_request req;
  client::done_handler done;
  client_response resp;
  url_parts url;
  std::chrono::milliseconds timeout{0};
  std::chrono::steady_clock::time_point deadline{};  // set when first started, if timeout > 0
  std::size_t loop_index = 0;
  int redirects = 0;
  int retries = 0;

  // Where it is: waiting in its pool's queue, or on a connection.
  host_pool* pool = nullptr;
  nbio::conn* c = nullptr;
  exchange* prev = nullptr;  // the pool's waiting queue (intrusive)
  exchange* next = nullptr;
  bool waiting = false;
  bool timer_armed = false;
  nbio::timer_id timer{};

  // Sending.
  std::string out;               // the head (and a small body), then chunk framing
  std::size_t body_sent = 0;     // bytes of req.body handed to the connection
  bool body_started = false;     // a byte of the body (or a body_source piece) was sent
  bool sent_all = false;         // the whole request is handed to the connection
  bool close_requested = false;  // the request said Connection: close

  // Receiving.
  response_parser parser;
  body_decoder body;
  std::string pending;  // unconsumed bytes: an incomplete head or chunk-size line
  bool got_bytes = false;
  bool head_done = false;
  bool keep_alive = false;
  bool until_close = false;
  bool follow = false;  // the response is a redirect to follow: its body is dropped
  bool completed = false;

  exchange() = default;
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;
  // One never completed (a task dropped by a stopped engine, a pool torn down with the engine)
  // ends here with nbio::errc::shutdown.
  ~exchange();
  // Clears the progress of an attempt (for a retry or a redirect).
  void reset_attempt();
  const parser_limits& limits() const noexcept;
};

// Owns an exchange inside a posted task. std::function wants a copyable callable, so a copy
// takes the pointer over (the task is moved, never really copied); a task that is dropped
// (the engine stopped) deletes it, which calls done with errc::shutdown.
struct owned_exchange {
  mutable exchange* x = nullptr;
  explicit owned_exchange(exchange* p) noexcept : x(p) {}
  owned_exchange(const owned_exchange& o) noexcept : x(std::exchange(o.x, nullptr)) {}
  owned_exchange& operator=(const owned_exchange&) = delete;
  ~owned_exchange() { delete x; }
  exchange* release() const noexcept { return std::exchange(x, nullptr); }
};

// Per connection, in the engine's slot.
struct conn_state {
  host_pool* pool = nullptr;
  exchange* x = nullptr;  // the request on it; null while idle
  bool idle = false;      // in pool->idle
  bool reused = false;    // x is not the connection's first request
  bool closing = false;   // graceful shutdown: close after the current response
};

// One scheme, host and port's connections on one loop.
struct host_pool {
  std::string key;   // "http://host:port" or "https://host:port"
  std::string dial;  // "host:port": what is dialed
  client::shared* owner = nullptr;
  nbio::dialer* dialer = nullptr;  // the client's plain or TLS dialer
  loop_state* loop = nullptr;
  std::vector<nbio::conn*> idle;  // most recently used last
  exchange* head = nullptr;       // requests waiting for a connection, oldest first
  exchange* tail = nullptr;
  std::size_t waiting = 0;
  std::size_t conns = 0;    // open plus being dialed
  std::size_t dialing = 0;  // of those, being dialed

  host_pool() = default;
  host_pool(const host_pool&) = delete;
  host_pool& operator=(const host_pool&) = delete;
  ~host_pool();  // the engine is gone: waiting requests end with errc::shutdown
  void push_back(exchange& x) noexcept;
  void push_front(exchange& x) noexcept;
  void unlink(exchange& x) noexcept;
  exchange* pop_front() noexcept;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A loop's part of the client: its pools by key, made and used by its thread only.
struct loop_state {
  std::size_t index = 0;
  std::unordered_map<std::string, std::unique_ptr<host_pool>, string_hash, std::equal_to<>> pools;
  bool stopping = false;  // the engine is stopping: new requests end with errc::shutdown
};

// Loop thread: runs `x` (posted or called from this loop) on its loop: pool, timer, connection.
void start_exchange(exchange* x);
// Loop thread (or the caller's, before x reached a loop): ends `x` (done is called, x is
// deleted).
void complete(exchange* x, std::error_code ec);
// Loop thread. Closes the idle connections of every pool of `ls`.
void close_idle(loop_state& ls);
// Loop thread. A redirect response ended: sends x to its Location, or ends it.
void follow_redirect(exchange* x);

}  // namespace detail

struct client::shared : std::enable_shared_from_this<client::shared> {
  shared(nbio::engine& e, client_options c);

  nbio::engine& eng;
  client_options cfg;
  parser_limits stream_limits;  // cfg.limits without a body limit (on_body)
  std::vector<std::unique_ptr<detail::loop_state>> loops;
  // The client's dialers, plain and TLS: each dial's on_connect tells its connection which pool
  // it is for. Their handler holds a reference to this object, so the pools outlive every call
  // from the engine. The TLS one is made by the constructor when cfg.tls is set, else on the
  // first https:// request (with a default context: the system store, ALPN http/1.1).
  nbio::dialer* dialer = nullptr;
  nbio::dialer* tls_dialer = nullptr;  // written once under tls_once
  std::error_code tls_error;           // why the default context could not be made
  std::once_flag tls_once;

  // Loop thread. The pool for `url`'s scheme, host and port on `ls`, made on first use (the
  // TLS dialer must exist for an https:// one: tls_dialer_ready()).
  detail::host_pool& pool_for(detail::loop_state& ls, const detail::url_parts& url);
  // Setup: makes `dialer` (once the object is owned by a shared_ptr), and `tls_dialer` when
  // cfg.tls is set.
  void make_dialer();
  // Any thread. Makes the TLS dialer on first use; the error when its context cannot be made.
  std::error_code tls_dialer_ready();
  // The loop a request to `key` sent from outside the loops runs on (from any loop too when
  // max_conns_per_host pins hosts to loops).
  std::size_t home_loop(std::string_view key) const noexcept;
};

}  // namespace nbio::http
