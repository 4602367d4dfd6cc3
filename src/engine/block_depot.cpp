// Private. The shared depot of free write-queue blocks.
#include "engine/block_depot.hpp"

#include <cstdlib>
#include <cstring>

namespace nbio::detail {

namespace {
// The link between batches lives in the first block's data area (the block is free).
write_block* next_batch(const write_block* b) noexcept {
  write_block* next;
  std::memcpy(&next, b->data, sizeof next);
  return next;
}
void set_next_batch(write_block* b, write_block* next) noexcept {
  std::memcpy(b->data, &next, sizeof next);
}
}  // namespace

block_depot::~block_depot() {
  while (batches_) {
    write_block* b = batches_;
    batches_ = next_batch(b);
    free_batch(b);
  }
}

void block_depot::free_batch(write_block* head) noexcept {
  while (head) {
    write_block* next = head->next;
    std::free(head);
    head = next;
  }
}

write_block* block_depot::take() noexcept {
  std::lock_guard lock(mu_);
  write_block* b = batches_;
  if (b) {
    batches_ = next_batch(b);
    --count_;
  }
  return b;
}

void block_depot::give(write_block* head) noexcept {
  {
    std::lock_guard lock(mu_);
    if (count_ < max_batches_) {
      set_next_batch(head, batches_);
      batches_ = head;
      ++count_;
      return;
    }
  }
  free_batch(head);
}

}  // namespace nbio::detail
