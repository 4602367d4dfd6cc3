// Private. Slab chunks of connection slots.
#include "engine/conn_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <new>

#include "nbio/engine/conn.hpp"

namespace nbio::detail {

static_assert(sizeof(chunk_header) <= conn_pool::header_size);

conn_pool::~conn_pool() {
  for (void* chunk : chunks_)
    ::munmap(chunk, chunk_size);
}

// fd -1 marks a free slot; its generation survives for stale handles to read.
bool conn_pool::live(const conn* c) noexcept {
  return c->fd_ >= 0;
}

void conn_pool::grow() {
  // Map twice the size and trim to a 64 KiB boundary: mmap only promises page alignment.
  void* raw =
      ::mmap(nullptr, chunk_size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = (start + chunk_size - 1) & ~(chunk_size - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  std::uintptr_t tail = aligned + chunk_size, end = start + chunk_size * 2;
  if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);

  auto* chunk = reinterpret_cast<char*>(aligned);
  ::new (chunk) chunk_header{&owner_, this};
  chunks_.push_back(chunk);
  // Slots are constructed once and reused; the free list runs through timer_.next.
  std::size_t per_chunk = (chunk_size - header_size) / slot_size_;
  for (std::size_t s = per_chunk; s-- > 0;) {
    conn* c = ::new (chunk + header_size + s * slot_size_) conn();
    c->timer_.next = reinterpret_cast<timer_link*>(free_);
    free_ = c;
  }
}

conn* conn_pool::allocate() {
  if (!free_) grow();
  conn* c = free_;
  free_ = reinterpret_cast<conn*>(c->timer_.next);
  c->timer_ = timer_link{};
  return c;
}

void conn_pool::free(conn* c) noexcept {
  c->fd_ = -1;
  c->timer_.next = reinterpret_cast<timer_link*>(free_);
  free_ = c;
}

}  // namespace nbio::detail
