// Private. Write queues: they exist only while a connection has bytes the kernel refused, and
// come from a per-loop pool.
//
// A queue is a list of 4 KiB blocks. 4 KiB keeps the cost of a backlogged small-message
// connection at one page, and writev of up to 64 blocks moves 256 KiB per syscall.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace nbio {
class conn;
}

namespace nbio::detail {

class block_depot;

struct write_block {
  static constexpr std::size_t size = 4096;
  static constexpr std::size_t header = 24;
  static constexpr std::size_t capacity = size - header;
  // The first block of a queue whose first write is small is a small one (the same header,
  // `small_capacity` bytes of data, allocated at small_size): under io_uring every write starts
  // a queue until the turn's submission, and a 64-byte message should not cost a page while it
  // waits. Later blocks are full-sized.
  static constexpr std::size_t small_size = 512;
  static constexpr std::size_t small_capacity = small_size - header;
  write_block* next;
  std::uint32_t begin;  // first unsent byte
  std::uint32_t end;    // one past the last queued byte
  std::uint32_t cap;    // capacity or small_capacity: how many bytes data holds
  std::uint32_t reserved;
  char data[capacity];
};
static_assert(sizeof(write_block) == write_block::size);
static_assert(offsetof(write_block, data) == write_block::header);

// A queued piece of a file (conn::send_file), kept in a block of its own whose `begin` is
// file_marker: it goes out with sendfile when it reaches the head of the queue.
struct file_segment {
  int fd;  // owned: closed when sent or dropped
  std::uint64_t offset;
  std::uint64_t remaining;
};
inline constexpr std::uint32_t file_marker = 0xffffffffu;
// A block of plaintext a transport (TLS) connection wrote while a file segment was queued
// ahead of it: it is encrypted when it reaches the head, so records go out in the order they
// were sealed. Its bytes are data[0, end).
inline constexpr std::uint32_t plain_marker = 0xfffffffeu;
// An empty block standing for the transport's end of stream (TLS close_notify), asked for while
// plaintext or a file waited: sent when it reaches the head, after them.
inline constexpr std::uint32_t close_marker = 0xfffffffdu;

struct write_queue {
  write_block* head = nullptr;
  write_block* tail = nullptr;
  std::size_t bytes = 0;  // queued bytes in memory; a file segment counts as its block
  // The connection it belongs to: the write budget's victim search. io_uring: null once the
  // connection closed while a send was in flight (the queue is released by its completion).
  conn* owner = nullptr;
  bool in_flight = false;             // io_uring: a send of the head bytes is with the kernel
  bool listed = false;                // io_uring: on the loop's list of this turn's sends
  std::uint8_t in_flight_blocks = 0;  // io_uring: how many head blocks the send covers
  // The loop's list of queues in use (the pool's free list, once released).
  write_queue* prev = nullptr;
  write_queue* next = nullptr;
};

// Loop thread only (but `total` and `depot`, shared by the engine's pools, are thread-safe).
class write_pool {
 public:
  // Free blocks kept for reuse without a lock (4 MiB per loop); past this, blocks go to the
  // engine's depot, shared by the loops, in batches.
  static constexpr std::size_t max_free_blocks = 1024;

  // `total`: the engine's count of bytes in blocks in use, all loops (one relaxed atomic add
  // per 4 KiB block taken or returned); `budget`: engine_options::max_write_queue_total.
  write_pool(std::atomic<std::size_t>& total, std::size_t budget, block_depot& depot) noexcept
      : total_(total), budget_(budget), depot_(depot) {}
  ~write_pool();
  write_pool(const write_pool&) = delete;
  write_pool& operator=(const write_pool&) = delete;

  // Allocation failures are results, not exceptions: null, or false from the functions that
  // add blocks (the caller closes the connection with ENOMEM; a queue left half-appended is
  // still whole enough to release). An exception would unwind through the handler that wrote
  // and end the loop thread, and with it every connection of the loop.
  // A queue for `owner`, listed among this loop's queues in use.
  [[nodiscard]] write_queue* acquire(conn& owner) noexcept;
  // Returns the queue and all its blocks to the pool.
  void release(write_queue* q) noexcept;
  // Whether the engine's queues hold more than the budget now.
  bool over_budget() const noexcept {
    return budget_ && total_.load(std::memory_order_relaxed) > budget_;
  }
  // This loop's largest queue when it holds at least min_victim() bytes, else null. Walks the
  // queues in use (connections with unsent bytes), so it runs only when over_budget().
  write_queue* largest_victim() const noexcept;
  // 1/256 of the budget (1 MiB of the default 256 MiB): a reading client's queue stays well
  // under it, so the budget never closes a connection that keeps up.
  std::size_t min_victim() const noexcept { return budget_ / 256; }
  [[nodiscard]] bool append(write_queue& q, std::string_view data) noexcept;
  // Puts `data` before everything queued (a transport's encryption of the head file segment).
  // On failure the queue is as it was.
  [[nodiscard]] bool prepend(write_queue& q, std::string_view data) noexcept;
  // Queues plaintext to be encrypted at the head (plain_marker blocks).
  [[nodiscard]] bool append_plain(write_queue& q, std::string_view data) noexcept;
  // Queues the transport's end-of-stream mark (close_marker).
  [[nodiscard]] bool append_close_mark(write_queue& q) noexcept;
  // The plaintext (or end-of-stream) block at the head, or null.
  static write_block* head_plain(const write_queue& q) noexcept;
  // Whether what is queued last waits to be encrypted (a file segment or plaintext): a
  // transport's next write must wait behind it, as plaintext.
  static bool tail_deferred(const write_queue& q) noexcept;
  // Drops the head block (a plaintext block, taken for encryption).
  void pop_head(write_queue& q) noexcept;
  // Queues a file segment after what is queued; takes ownership of `fd` (closed on failure).
  [[nodiscard]] bool append_file(write_queue& q, int fd, std::uint64_t offset,
                                 std::uint64_t length) noexcept;
  // Fills up to `max` iovecs with the queued bytes in order, stopping at a file segment or
  // plaintext;
  // returns the count.
  static int gather(const write_queue& q, iovec* iov, int max) noexcept;
  // Keeps the first `blocks` blocks (bytes, all) and frees the rest: an orphaned queue whose
  // head is still being sent.
  void keep_head(write_queue& q, unsigned blocks) noexcept;
  // Drops the first n bytes (they were sent).
  void consume(write_queue& q, std::size_t n) noexcept;
  // The file segment at the head of the queue, or null when the head holds bytes.
  static file_segment* head_file(const write_queue& q) noexcept;
  // Drops the head file segment (sent, or abandoned) and closes its descriptor.
  void pop_file(write_queue& q) noexcept;

 private:
  write_block* new_block(bool small = false) noexcept;  // null when malloc fails
  static void link_tail(write_queue& q, write_block* b) noexcept;
  // append / append_plain: `kind` 0 for bytes, plain_marker for plaintext.
  bool append_as(write_queue& q, std::string_view data, std::uint32_t kind) noexcept;
  void free_block(write_block* b) noexcept;

  std::atomic<std::size_t>& total_;
  const std::size_t budget_;
  block_depot& depot_;
  write_block* free_blocks_ = nullptr;
  std::size_t free_count_ = 0;
  // Small blocks kept for reuse (up to 4,096: 2 MiB per loop); past that they go to malloc.
  static constexpr std::size_t max_free_small = 4096;
  write_block* free_small_ = nullptr;
  std::size_t small_count_ = 0;
  write_queue* free_queues_ = nullptr;
  write_queue* in_use_ = nullptr;
};

}  // namespace nbio::detail
