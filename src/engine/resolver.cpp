// Private. The resolver thread.
#include "engine/resolver.hpp"

#include <netdb.h>

#include "nbio/core/error.hpp"

namespace nbio::detail {

resolver::~resolver() {
  stop();
}

void resolver::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void resolver::resolve(std::string host, std::uint16_t port, callback cb) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    jobs_.push_back({std::move(host), port, std::move(cb)});
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  cv_.notify_one();
}

void resolver::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::error_code ec;
    address result;
    if (::getaddrinfo(j.host.c_str(), nullptr, &hints, &res) != 0 || !res) {
      ec = errc::resolve_failed;
    } else {
      result = address(res->ai_addr, res->ai_addrlen);
      result.set_port(j.port);
    }
    if (res) ::freeaddrinfo(res);
    j.cb(ec, result);
    lock.lock();
  }
}

}  // namespace nbio::detail
