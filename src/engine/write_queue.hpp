// Private. Write queues: they exist only while a connection has bytes the kernel refused, and
// come from a per-loop pool.
//
// A queue is a list of 4 KiB blocks. 4 KiB keeps the cost of a backlogged small-message
// connection at one page, and writev of up to 64 blocks moves 256 KiB per syscall.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nbio::detail {

struct write_block {
  static constexpr std::size_t size = 4096;
  static constexpr std::size_t capacity = size - 16;
  write_block* next;
  std::uint32_t begin;  // first unsent byte
  std::uint32_t end;    // one past the last queued byte
  char data[capacity];
};
static_assert(sizeof(write_block) == write_block::size);

struct write_queue {
  write_block* head = nullptr;
  write_block* tail = nullptr;
  std::size_t bytes = 0;
  write_queue* next_free = nullptr;
};

// Loop thread only.
class write_pool {
 public:
  // Free blocks kept for reuse; past this, blocks go back to malloc (4 MiB per loop).
  static constexpr std::size_t max_free_blocks = 1024;

  write_pool() = default;
  ~write_pool();
  write_pool(const write_pool&) = delete;
  write_pool& operator=(const write_pool&) = delete;

  write_queue* acquire();
  // Returns the queue and all its blocks to the pool.
  void release(write_queue* q) noexcept;
  void append(write_queue& q, std::string_view data);
  // Fills up to `max` iovecs with the queued bytes, in order; returns the count.
  static int gather(const write_queue& q, iovec* iov, int max) noexcept;
  // Drops the first n bytes (they were sent).
  void consume(write_queue& q, std::size_t n) noexcept;

 private:
  write_block* new_block();
  void free_block(write_block* b) noexcept;

  write_block* free_blocks_ = nullptr;
  std::size_t free_count_ = 0;
  write_queue* free_queues_ = nullptr;
};

}  // namespace nbio::detail
