// Private. The handshake worker pool (handshake_pool.hpp).
#include "tls/handshake_pool.hpp"

#include <openssl/err.h>

#include "nbio/engine/conn.hpp"
#include "tls/stream.hpp"

namespace nbio::tls::detail {

handshake_pool::handshake_pool(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] { run(); });
}

handshake_pool::~handshake_pool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void handshake_pool::submit(std::unique_ptr<handshake_job> job,
                            void (*done)(nbio::conn&, std::unique_ptr<handshake_job>)) {
  {
    std::lock_guard lock(mu_);
    out_[job->ssl] = false;
    queue_.emplace_back(std::move(job), done);
  }
  cv_.notify_one();
}

bool handshake_pool::orphan(SSL* ssl) {
  std::lock_guard lock(mu_);
  auto it = out_.find(ssl);
  if (it == out_.end()) return false;
  it->second = true;
  return true;
}

void handshake_pool::run() {
  for (;;) {
    std::unique_ptr<handshake_job> job;
    void (*done)(nbio::conn&, std::unique_ptr<handshake_job>) = nullptr;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = std::move(queue_.front().first);
      done = queue_.front().second;
      queue_.pop_front();
    }
    stream::run_offloaded(*job);
    std::lock_guard lock(mu_);
    auto it = out_.find(job->ssl);
    const bool orphaned = it->second;
    out_.erase(it);
    if (orphaned) {
      SSL_free(job->ssl);
      continue;
    }
    // Under the lock: the connection's loop cannot orphan the SSL (and so cannot have been
    // stopped) between the check above and this post. The task runs only if the connection is
    // still open then; otherwise its reap frees the SSL (no job is out any more).
    auto shared = std::make_shared<std::unique_ptr<handshake_job>>(std::move(job));
    const nbio::conn_handle h = (*shared)->conn;
    h.post([shared, done](nbio::conn& c) { done(c, std::move(*shared)); });
  }
}

}  // namespace nbio::tls::detail
