// Public. An HTTP/1.x server on an engine (Go's http.Server).
//
//   nbio::engine eng;
//   nbio::http::serve_mux mux;
//   mux.handle("GET /", [](auto& w, auto&) { w.write("hello\n"); });
//   nbio::http::server srv(eng, mux);
//   srv.listen("127.0.0.1:8080");
//   eng.start();
//   eng.wait();
//
// Each connection reads into its loop's buffer and parses in place; a request whose head and
// body arrived whole is handled with views into that buffer (no copy). Only an incomplete
// request is copied, into a buffer that exists while it is incomplete: an idle keep-alive
// connection owns nothing beyond the engine's slot and 8 bytes. Handlers run inline on the
// thread that read the request (a loop, or the connection's thread in blocking mode), one
// request at a time per connection, so pipelined responses go out in order. A handler that
// must wait defers its response (response_writer::defer) or runs on a thread_pool (on_pool);
// the responses to the requests of one read go out in one write.
//
// Limits and timeouts (server_options): the parser's limits (414/431/413 and the rest answered
// with their status, then the connection closes), a budget for the bytes of incomplete requests
// across all connections (max_buffered_bytes: the largest holders are evicted), a header timeout
// counted from the first byte of a request head (slowloris), a body timeout from the end of the
// head, a keep-alive idle timeout between requests, and a write timeout for responses the client
// does not read. A timed-out connection is closed without a response. Every response the server
// writes by itself (400, 413, 414, 417, 431, 500, 501, 505) carries Date and Connection: close; the
// Date of every response is formatted once a second per thread.
//
// Thread affinity: construct and listen() at setup time (any thread, as engine::listen); the
// handler runs on loop threads (and blocking-mode connection threads) concurrently.
// Lifetime: stop the engine (stop() or shutdown()) before the server is destroyed, and destroy
// the server before the engine (declare it after): while the engine runs, connections call the
// handler and whatever it refers to. Deferred responses finishing after the server is gone are
// dropped.
//
// Backpressure: a client that pipelines requests without reading the responses gets no more of
// them served once 256 KiB wait in its queue; its connection stops reading until they drain
// (file responses count as a block each, so it cannot pile up file descriptors either).
//
// End of input: a client's FIN closes the connection once what is queued is sent (nginx's
// default). A request still waiting on a deferred response is then abandoned: its
// deferred_response::client_connected() turns false. So a client that half-closes right after
// its request gets no answer from a deferred or worker-pool handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "nbio/engine/engine.hpp"
#include "nbio/http/parser.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"
#include "nbio/http/serve_mux.hpp"

namespace nbio::http {

struct server_options {
  parser_limits limits{};
  // From the first byte of a request head to its end (Go's ReadHeaderTimeout); also the wait
  // for the first request of a new connection.
  std::chrono::milliseconds read_header_timeout{10'000};
  // From the end of a head to the end of its body.
  std::chrono::milliseconds read_body_timeout{60'000};
  // Between requests on a keep-alive connection (Go's IdleTimeout).
  std::chrono::milliseconds idle_timeout{60'000};
  // Responses waiting for the client must all be taken within this long from when bytes first
  // wait in the connection's queue (the engine's conn_options::write_timeout: progress does
  // not push it back), or the connection closes. Raise it for large downloads to slow clients.
  std::chrono::milliseconds write_timeout{60'000};
  // Bytes of responses a connection may have queued for a slow reader (handlers answer at
  // once, so a whole response waits here); past it the connection closes with
  // errc::write_queue_overflow. Queued bytes sit in pooled 4 KiB blocks only while pending.
  std::size_t max_write_queue = 64u << 20;
  // Requests a connection may carry (0: no limit); the last one is answered with
  // Connection: close.
  std::uint32_t max_requests_per_conn = 0;
  // Which requests have their body streamed (request::on_body) instead of collected: asked
  // once a head with a body is complete; empty: none. Streamed bodies are bounded by
  // max_streamed_body instead of limits.max_body, and by read_body_timeout.
  std::function<bool(const request&)> stream_body;
  std::uint64_t max_streamed_body = 1ull << 30;
  // Bytes all connections together may hold for requests that are not whole yet: incomplete
  // heads, bodies being collected, pipelined requests waiting their turn (the buffers'
  // capacity, all loops counted). Past it, a connection whose buffer grows is evicted: answered
  // 431 (an incomplete head) or 413 (a body), or closed without an answer while one of its
  // responses is under way. The one evicted is the connection that grew when it holds at least
  // the average, otherwise the largest holder of its loop (blocking mode: itself). So a flood
  // of stalled heads costs about this much memory, not connections x max_header_bytes (10,000 x
  // 16 KiB = 160 MiB). 0: unlimited (still counted in stats()). Default 64 MiB.
  std::size_t max_buffered_bytes = 64u << 20;
};

// server::stats(): counters over all loops (relaxed reads, for statistics).
struct server_stats {
  std::uint64_t requests_served = 0;  // requests answered so far
  std::uint64_t buffered_bytes = 0;   // held now by requests not whole yet (max_buffered_bytes)
  std::uint64_t buffering_connections = 0;  // connections holding some of those bytes now
  std::uint64_t budget_evictions = 0;       // connections evicted past max_buffered_bytes
};

class server {
 public:
  server(nbio::engine& eng, handler h, server_options config = {});
  // Serves `mux` (which outlives the server); each listen() reserves the room its upgrade
  // routes need as they are then (add routes before listening).
  server(nbio::engine& eng, const serve_mux& mux, server_options config = {});
  server(nbio::engine& eng, serve_mux&& mux, server_options config = {}) = delete;
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  // Setup, any thread: serves HTTP on `addr` ("127.0.0.1:8080", "[::1]:0", "unix:/path").
  // options.conn's write_timeout and max_write_queue are taken from the server_options, and
  // its reserve_data is raised to the handler's takeover_bytes() (an upgrade's room). Throws
  // std::system_error as engine::listen does.
  nbio::listener& listen(std::string_view addr, nbio::listen_options options = {});

  const server_options& options() const noexcept;
  // Requests answered so far (all loops; relaxed, for statistics): stats().requests_served.
  std::uint64_t requests_served() const noexcept;
  // Any thread.
  server_stats stats() const noexcept;

  struct shared;  // what every connection of this server refers to (private)

 private:
  nbio::engine& eng_;
  std::shared_ptr<shared> shared_;
  const serve_mux* mux_ = nullptr;
};

}  // namespace nbio::http
