// Private. The handshake worker pool (handshake_pool.hpp).
#include "tls/handshake_pool.hpp"

#include <openssl/err.h>

#include "nbio/engine/conn.hpp"
#include "tls/stream.hpp"

namespace nbio::tls::detail {

handshake_pool::handshake_pool(unsigned threads) : threads_(threads) {}

handshake_pool::~handshake_pool() = default;  // threads_ runs what is queued, then joins

void handshake_pool::submit(std::unique_ptr<handshake_job> job, done_fn done) {
  {
    std::lock_guard lock(mu_);
    out_[job->ssl] = false;
  }
  // std::function needs a copyable callable: the job travels in a shared_ptr.
  auto shared = std::make_shared<std::unique_ptr<handshake_job>>(std::move(job));
  threads_.post([this, shared, done] { run(std::move(*shared), done); });
}

bool handshake_pool::orphan(SSL* ssl) {
  std::lock_guard lock(mu_);
  auto it = out_.find(ssl);
  if (it == out_.end()) return false;
  it->second = true;
  return true;
}

void handshake_pool::run(std::unique_ptr<handshake_job> job, done_fn done) {
  stream::run_offloaded(*job);
  std::lock_guard lock(mu_);
  auto it = out_.find(job->ssl);
  const bool orphaned = it->second;
  out_.erase(it);
  if (orphaned) {
    SSL_free(job->ssl);
    return;
  }
  // Under the lock: the connection's loop cannot orphan the SSL (and so cannot have been
  // stopped) between the check above and this post. The task runs only if the connection is
  // still open then; otherwise its reap frees the SSL (no job is out any more).
  auto shared = std::make_shared<std::unique_ptr<handshake_job>>(std::move(job));
  const nbio::conn_handle h = (*shared)->conn;
  h.post([shared, done](nbio::conn& c) { done(c, std::move(*shared)); });
}

}  // namespace nbio::tls::detail
