// Private. The timing wheel's placement and cascade.
#include "nbio/engine/timer_wheel.hpp"

#include <bit>

namespace nbio {

void timer_wheel::link(timer_link*& head, timer_link& t) noexcept {
  t.next = head;
  if (head) head->pprev = &t.next;
  head = &t;
  t.pprev = &head;
}

void timer_wheel::unlink(timer_link& t) noexcept {
  *t.pprev = t.next;
  if (t.next) t.next->pprev = t.pprev;
  t.next = nullptr;
  t.pprev = nullptr;
}

void timer_wheel::place(timer_link& t) noexcept {
  if (before_or_at(t.expires, now_)) {
    link(due_, t);
    return;
  }
  // The highest byte in which expiry and now differ picks the level; that byte of the expiry
  // picks the slot. Every byte above it equals now's, so the entry is reached exactly when now's
  // lower bytes roll over to zero at that slot.
  std::uint32_t diff = t.expires ^ now_;
  int level = (31 - std::countl_zero(diff)) / 8;
  std::uint32_t slot = (t.expires >> (8 * level)) & (slots - 1);
  if (level == 0) level0_bits_[slot / 64] |= std::uint64_t{1} << (slot % 64);
  link(wheel_[level][slot], t);
}

void timer_wheel::schedule(timer_link& t, std::uint32_t expires) noexcept {
  if (t.scheduled()) {
    unlink(t);
    --size_;
  }
  t.expires = expires;
  place(t);
  ++size_;
}

void timer_wheel::cancel(timer_link& t) noexcept {
  if (!t.scheduled()) return;
  unlink(t);
  --size_;
}

void timer_wheel::cascade(int level, std::uint32_t tick) noexcept {
  timer_link*& head = wheel_[level][(tick >> (8 * level)) & (slots - 1)];
  timer_link* list = head;
  head = nullptr;
  while (list) {
    timer_link* t = list;
    list = t->next;
    t->next = nullptr;
    t->pprev = nullptr;
    // An entry that expires on this very tick goes to the level-0 slot that fires next.
    if (t->expires == now_)
      link(wheel_[0][now_ & (slots - 1)], *t);  // fires in this step: no bit needed
    else
      place(*t);
  }
}

std::int64_t timer_wheel::next_timeout() const noexcept {
  if (size_ == 0) return -1;
  if (due_) return 0;
  // Level 0 holds the entries of the current 256-tick span, each in the slot of its exact tick:
  // the first occupied slot after now's is the next expiry.
  const std::uint32_t current = now_ & (slots - 1);
  for (std::uint32_t word = (current + 1) / 64; word < slots / 64; ++word) {
    std::uint64_t bits = level0_bits_[word];
    if (word == (current + 1) / 64) bits &= ~std::uint64_t{0} << ((current + 1) % 64);
    while (bits) {
      std::uint32_t slot = word * 64 + static_cast<std::uint32_t>(std::countr_zero(bits));
      if (wheel_[0][slot]) return slot - current;
      level0_bits_[word] &= ~(std::uint64_t{1} << (slot % 64));  // emptied since: forget it
      bits &= bits - 1;
    }
  }
  // Nothing until the next cascade, which may bring entries down.
  return slots - current;
}

}  // namespace nbio
