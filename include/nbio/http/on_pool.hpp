// Public. Handlers that block (a database call, a synchronous client, heavy CPU) run on a pool
// of threads instead of an event loop, chosen per server or per route:
//
//   nbio::thread_pool pool(8);  // nbio/engine/thread_pool.hpp
//   mux.handle("GET /report", nbio::http::on_pool(pool, slow_report));   // this route only
//   nbio::http::server srv(eng, nbio::http::on_pool(pool, mux.as_handler()));  // every request
//
// on_pool(pool, h) returns a handler that copies the request (head, body, path values, remote
// address), defers the response (response_writer::defer) and runs h on a pool thread with the
// copy and the deferred response's writer; when h returns the response is finished. The loop
// goes on with other connections meanwhile; the connection itself serves its next pipelined
// request only after this one is answered, so per-connection order holds.
//
// Thread affinity: on_pool's handler from any thread. The pool must outlive every server using
// it (its destructor runs the tasks queued so far, then joins).
#pragma once

#include "nbio/engine/thread_pool.hpp"
#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace nbio::http {

// A handler that runs `h` on `pool` (see above). A handler that throws there gets a 500 (or,
// after it flushed, its connection closed).
handler on_pool(nbio::thread_pool& pool, handler h);

}  // namespace nbio::http
