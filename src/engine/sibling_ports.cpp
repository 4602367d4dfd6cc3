// Private. The worker processes' shared table of listened addresses.
#include "engine/sibling_ports.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <new>

namespace nbio::detail {

static_assert(std::atomic<pid_t>::is_always_lock_free && std::atomic<unsigned>::is_always_lock_free,
              "the refusals are shared between processes");

sibling_ports* sibling_ports::create() noexcept {
  void* p = ::mmap(nullptr, sizeof(sibling_ports), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* table = new (p) sibling_ports;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int r = pthread_mutex_init(&table->mu_, &attr);
  pthread_mutexattr_destroy(&attr);
  if (r != 0) {
    ::munmap(p, sizeof(sibling_ports));
    errno = r;
    return nullptr;
  }
  return table;
}

void sibling_ports::destroy(sibling_ports* table) noexcept {
  if (!table) return;
  pthread_mutex_destroy(&table->mu_);
  ::munmap(table, sizeof(sibling_ports));
}

sibling_ports*& sibling_ports::current() noexcept {
  static sibling_ports* table = nullptr;
  return table;
}

void sibling_ports::lock() noexcept {
  // A worker killed while it listened: its listen is void (the kernel closed its sockets) and
  // the table is consistent (add() is the last step), so the next one carries on.
  if (pthread_mutex_lock(&mu_) == EOWNERDEAD) pthread_mutex_consistent(&mu_);
}

void sibling_ports::unlock() noexcept {
  pthread_mutex_unlock(&mu_);
}

bool sibling_ports::contains(const address& a) const noexcept {
  if (count_ >= capacity) return true;  // full: join, as workers did before the table
  for (std::size_t i = 0; i < count_; ++i)
    if (entry(i) == a) return true;
  return false;
}

void sibling_ports::add(const address& a) noexcept {
  if (count_ < capacity) new (entries_[count_++]) address(a);
}

}  // namespace nbio::detail
