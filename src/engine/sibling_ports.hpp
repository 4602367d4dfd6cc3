// Private. The addresses the workers of one nbio::run_workers supervisor listen on, in memory
// the supervisor maps before it forks: a worker joins its siblings' SO_REUSEPORT sockets, yet
// refuses (EADDRINUSE) a port some other server holds, as a lone listener does.
//
// A process-shared mutex orders the workers' listens: the first worker to listen on an address
// probes it, binds it and records it; its siblings (and restarted workers) find it recorded and
// join. It is held only across a listen (setup, never the I/O path). It is robust: a worker that
// dies holding it leaves it to the next one (EOWNERDEAD).
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <new>

#include "nbio/core/address.hpp"

namespace nbio::detail {

class sibling_ports {
 public:
  // Distinct addresses recorded; past this, workers join without the check. 4,096 entries map
  // 540 KiB of address space, of which only the pages used become memory.
  static constexpr std::size_t capacity = 4096;

  // Supervisor, before forking: a table in a shared anonymous mapping, or null (errno set) when
  // mmap or the mutex fails.
  static sibling_ports* create() noexcept;
  static void destroy(sibling_ports* table) noexcept;
  // The table of this worker process (run_workers sets it in each worker), else null.
  static sibling_ports*& current() noexcept;

  void lock() noexcept;
  void unlock() noexcept;
  // Under the lock. Whether a sibling listens on `a` (true, too, once the table is full).
  bool contains(const address& a) const noexcept;
  void add(const address& a) noexcept;
  // A worker found one of its ports held by another server: restarting it cannot help, so the
  // supervisor stops instead when that worker exits (read without the lock). Kept per worker
  // pid: a worker that caught the error and carried on elsewhere, then crashed days later for
  // another reason, is restarted as usual, and so is any other worker. Past max_refused
  // refusing workers, any exit counts as refused.
  static constexpr unsigned max_refused = 64;
  void mark_refused() noexcept {
    const unsigned i = refused_count_.fetch_add(1, std::memory_order_relaxed);
    if (i < max_refused) refused_pids_[i].store(::getpid(), std::memory_order_release);
  }
  bool refused_by(pid_t worker) const noexcept {
    const unsigned n = refused_count_.load(std::memory_order_acquire);
    if (n > max_refused) return true;
    for (unsigned i = 0; i < n; ++i)
      if (refused_pids_[i].load(std::memory_order_acquire) == worker) return true;
    return false;
  }

 private:
  sibling_ports() = default;

  const address& entry(std::size_t i) const noexcept {
    return *std::launder(reinterpret_cast<const address*>(entries_[i]));
  }

  pthread_mutex_t mu_;
  // Lock-free atomics: valid across processes in shared memory.
  std::atomic<unsigned> refused_count_{0};
  std::atomic<pid_t> refused_pids_[max_refused]{};
  std::size_t count_ = 0;
  // Raw storage, built as entries are added: the mapping's untouched pages stay unallocated.
  alignas(address) unsigned char entries_[capacity][sizeof(address)];
};

}  // namespace nbio::detail
