// Private. Free write-queue blocks shared by the engine's loops.
//
// Each loop keeps up to 1,024 free blocks of its own (write_pool, no lock). Past that it hands
// blocks over here in batches, and it takes a batch from here before it mallocs. Why: a loop
// thread's freed blocks go back to its own malloc arena, where no other loop can reuse them, so
// the process keeps the sum of each loop's own peak. Measured on ws_echo under a 128 MiB write
// budget (200 clients that send and never read): 149 MB of heap with one loop, 206 MB with two.
// Shared here, the blocks one loop frees carry the next loop's queues, and the memory of all
// queues follows the peak of their sum, which the write budget bounds.
#pragma once

#include <cstddef>
#include <mutex>

#include "engine/write_queue.hpp"

namespace nbio::detail {

// Any thread (a mutex, taken once per batch: once per 1 MiB of queue growth or drain past a
// loop's own 4 MiB).
class block_depot {
 public:
  static constexpr std::size_t batch = 256;  // blocks per hand-over (1 MiB)

  // Keeps at most `max_bytes` of free blocks; past that, batches go back to malloc.
  explicit block_depot(std::size_t max_bytes) noexcept
      : max_batches_(max_bytes / (batch * write_block::size)) {}
  ~block_depot();
  block_depot(const block_depot&) = delete;
  block_depot& operator=(const block_depot&) = delete;

  // A batch of `batch` blocks linked by `next`, or null when none is kept.
  write_block* take() noexcept;
  // Keeps a batch of `batch` blocks linked by `next`; when full, frees them.
  void give(write_block* head) noexcept;

 private:
  static void free_batch(write_block* head) noexcept;

  std::mutex mu_;
  write_block* batches_ = nullptr;  // each batch's first block holds the next batch's address
  std::size_t count_ = 0;
  const std::size_t max_batches_;
};

}  // namespace nbio::detail
