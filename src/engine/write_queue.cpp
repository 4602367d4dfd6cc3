// Private. The pooled write queue.
#include "engine/write_queue.hpp"

#include "engine/block_depot.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "sys/fault.hpp"

namespace nbio::detail {

write_pool::~write_pool() {
  while (free_blocks_) {
    write_block* b = free_blocks_;
    free_blocks_ = b->next;
    std::free(b);
  }
  while (free_small_) {
    write_block* b = free_small_;
    free_small_ = b->next;
    std::free(b);
  }
  while (free_queues_) {
    write_queue* q = free_queues_;
    free_queues_ = q->next;
    delete q;
  }
}

write_queue* write_pool::acquire(conn& owner) noexcept {
  if (fault::fail(fault::kind::alloc)) return nullptr;
  write_queue* q;
  if (free_queues_) {
    q = free_queues_;
    free_queues_ = q->next;
    *q = write_queue{};
  } else {
    q = new (std::nothrow) write_queue;
    if (!q) return nullptr;
  }
  q->owner = &owner;
  q->next = in_use_;
  if (in_use_) in_use_->prev = q;
  in_use_ = q;
  return q;
}

write_queue* write_pool::largest_victim() const noexcept {
  write_queue* best = nullptr;
  for (write_queue* q = in_use_; q; q = q->next)
    if (q->owner && (!best || q->bytes > best->bytes)) best = q;
  return best && best->bytes >= min_victim() ? best : nullptr;
}

namespace {
file_segment* segment_of(write_block* b) noexcept {
  return b->begin == file_marker ? std::launder(reinterpret_cast<file_segment*>(b->data)) : nullptr;
}
}  // namespace

void write_pool::release(write_queue* q) noexcept {
  write_block* b = q->head;
  while (b) {
    write_block* next = b->next;
    if (file_segment* f = segment_of(b)) ::close(f->fd);
    free_block(b);
    b = next;
  }
  if (q->prev)
    q->prev->next = q->next;
  else
    in_use_ = q->next;
  if (q->next) q->next->prev = q->prev;
  *q = write_queue{};
  q->next = free_queues_;
  free_queues_ = q;
}

void write_pool::keep_head(write_queue& q, unsigned blocks) noexcept {
  write_block* last = q.head;
  std::size_t kept = 0;
  for (unsigned i = 1; last && i <= blocks; ++i) {
    kept += last->end - last->begin;
    if (i == blocks) break;
    last = last->next;
  }
  if (!last || blocks == 0) return;
  write_block* b = last->next;
  last->next = nullptr;
  q.tail = last;
  q.bytes = kept;
  while (b) {
    write_block* next = b->next;
    if (file_segment* f = segment_of(b)) ::close(f->fd);
    free_block(b);
    b = next;
  }
}

write_block* write_pool::new_block(bool small) noexcept {
  // Counted (and failed) whether the pool or malloc serves it: the count of a session does not
  // depend on what the pool held.
  if (fault::fail(fault::kind::alloc)) return nullptr;
  write_block* b;
  if (small) {
    b = free_small_;
    if (b) {
      free_small_ = b->next;
      --small_count_;
    } else {
      b = static_cast<write_block*>(std::malloc(write_block::small_size));
      if (!b) return nullptr;
    }
    total_.fetch_add(write_block::small_size, std::memory_order_relaxed);
    b->cap = write_block::small_capacity;
  } else {
    b = free_blocks_;
    if (b) {
      free_blocks_ = b->next;
      --free_count_;
    } else if ((b = depot_.take())) {  // blocks another loop (or this one) gave back
      free_blocks_ = b->next;
      free_count_ = block_depot::batch - 1;
    } else {
      b = static_cast<write_block*>(std::malloc(sizeof(write_block)));
      if (!b) return nullptr;
    }
    total_.fetch_add(write_block::size, std::memory_order_relaxed);
    b->cap = write_block::capacity;
  }
  b->next = nullptr;
  b->begin = b->end = 0;
  return b;
}

void write_pool::free_block(write_block* b) noexcept {
  if (b->cap == write_block::small_capacity) {
    total_.fetch_sub(write_block::small_size, std::memory_order_relaxed);
    if (small_count_ >= max_free_small) {
      std::free(b);
      return;
    }
    b->next = free_small_;
    free_small_ = b;
    ++small_count_;
    return;
  }
  total_.fetch_sub(write_block::size, std::memory_order_relaxed);
  if (free_count_ >= max_free_blocks) {
    // Full: a batch from the top of the stack goes to the depot (a walk of 256 links, once per
    // 256 blocks freed), where any loop can take it.
    write_block* head = free_blocks_;
    write_block* last = head;
    for (std::size_t i = 1; i < block_depot::batch; ++i)
      last = last->next;
    free_blocks_ = last->next;
    last->next = nullptr;
    free_count_ -= block_depot::batch;
    depot_.give(head);
  }
  b->next = free_blocks_;
  free_blocks_ = b;
  ++free_count_;
}

void write_pool::link_tail(write_queue& q, write_block* b) noexcept {
  if (q.tail)
    q.tail->next = b;
  else
    q.head = b;
  q.tail = b;
}

bool write_pool::append(write_queue& q, std::string_view data) noexcept {
  return append_as(q, data, 0);
}

bool write_pool::append_plain(write_queue& q, std::string_view data) noexcept {
  return append_as(q, data, plain_marker);
}

// Bytes go on in the tail block after bytes, plaintext after plaintext; a file segment, an end
// mark or a full block starts a new one.
bool write_pool::append_as(write_queue& q, std::string_view data, std::uint32_t kind) noexcept {
  while (!data.empty()) {
    write_block* t = q.tail;
    const bool same_kind =
        t && (kind == plain_marker ? t->begin == plain_marker : t->begin < close_marker);
    if (!same_kind || t->end == t->cap) {
      // A queue's first block is small when what it starts with fits (see write_block).
      const bool small = !q.tail && kind == 0 && data.size() <= write_block::small_capacity;
      write_block* b = new_block(small);
      if (!b) return false;  // what was copied stays counted in q.bytes: the queue is whole
      b->begin = kind;
      link_tail(q, b);
      t = b;
    }
    std::size_t n = std::min<std::size_t>(data.size(), t->cap - t->end);
    std::memcpy(t->data + t->end, data.data(), n);
    t->end += static_cast<std::uint32_t>(n);
    q.bytes += n;
    data.remove_prefix(n);
  }
  return true;
}

bool write_pool::prepend(write_queue& q, std::string_view data) noexcept {
  if (data.empty()) return true;
  // Build the blocks as a queue of their own, then splice it in front.
  write_queue front;
  if (!append(front, data)) {
    for (write_block* b = front.head; b;) {
      write_block* next = b->next;
      free_block(b);
      b = next;
    }
    return false;
  }
  front.tail->next = q.head;
  if (!q.head) q.tail = front.tail;
  q.head = front.head;
  q.bytes += front.bytes;
  return true;
}

bool write_pool::append_close_mark(write_queue& q) noexcept {
  write_block* b = new_block();
  if (!b) return false;
  b->begin = close_marker;
  link_tail(q, b);
  return true;
}

write_block* write_pool::head_plain(const write_queue& q) noexcept {
  return q.head && (q.head->begin == plain_marker || q.head->begin == close_marker) ? q.head
                                                                                    : nullptr;
}

bool write_pool::tail_deferred(const write_queue& q) noexcept {
  return q.tail && q.tail->begin >= close_marker;  // a file, plaintext or the end mark
}

void write_pool::pop_head(write_queue& q) noexcept {
  write_block* b = q.head;
  q.bytes -= b->end;
  q.head = b->next;
  if (!q.head) q.tail = nullptr;
  free_block(b);
}

bool write_pool::append_file(write_queue& q, int fd, std::uint64_t offset,
                             std::uint64_t length) noexcept {
  write_block* b = new_block();
  if (!b) {
    ::close(fd);
    return false;
  }
  b->begin = file_marker;
  new (b->data) file_segment{fd, offset, length};
  q.bytes += write_block::size;  // its block counts, not the file's bytes (they wait on disk)
  link_tail(q, b);
  return true;
}

file_segment* write_pool::head_file(const write_queue& q) noexcept {
  return q.head ? segment_of(q.head) : nullptr;
}

void write_pool::pop_file(write_queue& q) noexcept {
  write_block* b = q.head;
  ::close(segment_of(b)->fd);
  q.bytes -= write_block::size;
  q.head = b->next;
  if (!q.head) q.tail = nullptr;
  free_block(b);
}

int write_pool::gather(const write_queue& q, iovec* iov, int max) noexcept {
  int n = 0;
  for (write_block* b = q.head; b && n < max; b = b->next) {
    if (b->begin >= close_marker) break;  // a file, plaintext, the end mark: bytes after wait
    if (b->end == b->begin) continue;
    iov[n].iov_base = b->data + b->begin;
    iov[n].iov_len = b->end - b->begin;
    ++n;
  }
  return n;
}

void write_pool::consume(write_queue& q, std::size_t n) noexcept {
  q.bytes -= n;
  while (n > 0 && q.head) {
    write_block* b = q.head;
    std::size_t avail = b->end - b->begin;
    if (n < avail) {
      b->begin += static_cast<std::uint32_t>(n);
      return;
    }
    n -= avail;
    q.head = b->next;
    if (!q.head) q.tail = nullptr;
    free_block(b);
  }
}

}  // namespace nbio::detail
