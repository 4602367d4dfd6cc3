// Private. Worker threads for the expensive step of server handshakes
// (server_options::handshake_threads): the ClientHello's key exchange and the certificate
// signature (an RSA-2048 signature is ~1 ms), so a storm of new connections costs the loops
// no CPU and established connections keep their latency.
//
// A job carries the SSL object, the bytes read and a handle to the connection. While it is out
// the connection reads nothing (paused) and its thread does not touch the SSL. The worker runs
// SSL_do_handshake against a BIO of its own (bytes in from the job, bytes out into it), then
// hands the job back to the connection's loop. A connection that closes meanwhile only marks
// its job orphaned; the worker then frees the SSL itself. The threads are an nbio::thread_pool
// (the one pool type, as http::on_pool's); this adds the jobs' bookkeeping.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>

#include "nbio/engine/conn_handle.hpp"
#include "nbio/engine/thread_pool.hpp"

namespace nbio::tls::detail {

struct handshake_job {
  SSL* ssl = nullptr;
  nbio::conn_handle conn;
  std::string in;      // what the connection read
  std::string out;     // what the handshake step wrote
  int result = 0;      // SSL_do_handshake's return
  int error = 0;       // SSL_get_error's
  std::error_code ec;  // the cause when it failed (OpenSSL's error queue is per thread)
};

class handshake_pool {
 public:
  explicit handshake_pool(unsigned threads);
  ~handshake_pool();  // finishes queued jobs (orphans by then), joins
  handshake_pool(const handshake_pool&) = delete;
  handshake_pool& operator=(const handshake_pool&) = delete;

  // Loop thread: hands the job out. `done` runs on the connection's thread afterwards (unless
  // the connection is gone by then).
  void submit(std::unique_ptr<handshake_job> job,
              void (*done)(nbio::conn&, std::unique_ptr<handshake_job>));
  // Loop thread, when the connection's SSL is freed: true when a job has it (the worker will
  // free it), false when the caller frees it.
  bool orphan(SSL* ssl);

 private:
  using done_fn = void (*)(nbio::conn&, std::unique_ptr<handshake_job>);
  void run(std::unique_ptr<handshake_job> job, done_fn done);

  std::mutex mu_;
  std::unordered_map<SSL*, bool> out_;  // SSLs with a job out -> orphaned
  nbio::thread_pool threads_;           // last: joined first, while mu_ and out_ exist
};

}  // namespace nbio::tls::detail
