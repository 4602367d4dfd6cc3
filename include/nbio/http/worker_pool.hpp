// Public. Handlers that block (a database call, a synchronous client, heavy CPU) run on a pool
// of threads instead of an event loop, chosen per server or per route:
//
//   nbio::http::worker_pool pool(8);
//   mux.handle("GET /report", nbio::http::on_pool(pool, slow_report));   // this route only
//   nbio::http::server srv(eng, nbio::http::on_pool(pool, mux.as_handler()));  // every request
//
// on_pool(pool, h) returns a handler that copies the request (head, body, path values, remote
// address), defers the response (response_writer::defer) and runs h on a pool thread with the
// copy and the deferred response's writer; when h returns the response is finished. The loop
// goes on with other connections meanwhile; the connection itself serves its next pipelined
// request only after this one is answered, so per-connection order holds.
//
// Thread affinity: post() and on_pool's handler from any thread. The pool must outlive every
// server using it (the destructor runs the tasks queued so far, then joins).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "nbio/http/request.hpp"
#include "nbio/http/response_writer.hpp"

namespace nbio::http {

class worker_pool {
 public:
  // `threads` workers; 0 means one per core.
  explicit worker_pool(unsigned threads = 0);
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  ~worker_pool();

  // Any thread: runs `task` on a pool thread (FIFO).
  void post(std::function<void()> task);
  std::size_t size() const noexcept { return threads_.size(); }

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A handler that runs `h` on `pool` (see above). A handler that throws there gets a 500 (or,
// after it flushed, its connection closed).
handler on_pool(worker_pool& pool, handler h);

}  // namespace nbio::http
