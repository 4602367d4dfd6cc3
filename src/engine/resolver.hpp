// Private. Name resolution off the loops: getaddrinfo blocks, so it runs on one resolver
// thread per engine, started on first use, and hands results back through a callback that
// the caller posts to its loop.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "nbio/core/address.hpp"

namespace nbio::detail {

class resolver {
 public:
  using callback = std::function<void(std::error_code, address)>;

  resolver() = default;
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // Any thread. Resolves host (the first address of any family, stream sockets) and calls
  // cb on the resolver thread.
  void resolve(std::string host, std::uint16_t port, callback cb);
  // Drops the pending jobs and joins the thread; later resolve() calls are dropped too. The
  // engine calls it before destroying the loops the callbacks post to.
  void stop();

 private:
  struct job {
    std::string host;
    std::uint16_t port;
    callback cb;
  };
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace nbio::detail
