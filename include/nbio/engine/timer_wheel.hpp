// Public. A hierarchical hashed timing wheel: O(1) schedule and cancel, no allocation.
//
// Each loop owns one. Time is a 32-bit millisecond tick that wraps after 49.7 days; deadlines
// are compared by signed difference, so a delay must stay under 2^31 ms (24.8 days): callers
// clamp with clamp_delay(). Four levels of 256 slots cover the whole 32-bit range: an entry is
// placed by the highest byte in which its expiry differs from now and moves down at most three
// times before it fires (the "cascade" of Varghese & Lauck's scheme 7, as in the Linux kernel).
//
// Entries are intrusive (timer_link embedded in the owner), so a connection resetting its
// deadline on every read costs two pointer writes, and the owning loop tells entries apart by
// their `tag`. Loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace nbio {

struct timer_link {
  timer_link* next = nullptr;
  timer_link** pprev = nullptr;  // the pointer that points at us; null when not scheduled
  std::uint32_t expires = 0;     // tick at which the entry fires
  std::uint8_t tag = 0;          // the owner's kind of entry (connection, user timer, ...)
  std::uint8_t owner_u8 = 0;     // spare bytes the owner may use (kept in the padding)
  std::uint16_t owner_u16 = 0;

  bool scheduled() const noexcept { return pprev != nullptr; }
};
static_assert(sizeof(timer_link) == 24, "timer_link is embedded in every connection");

class timer_wheel {
 public:
  static constexpr std::uint32_t max_delay = 0x7fffffffu;
  // A delay in milliseconds, clamped to what the wheel can represent (24.8 days).
  static constexpr std::uint32_t clamp_delay(std::int64_t ms) noexcept {
    return ms <= 0 ? 0u : ms >= max_delay ? max_delay : static_cast<std::uint32_t>(ms);
  }

  explicit timer_wheel(std::uint32_t now = 0) noexcept : now_(now) {}
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;

  std::uint32_t now() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }

  // Schedules (or moves) `t` to fire at tick `expires`, which must lie within max_delay of now
  // (use now() + clamp_delay(ms)). An expiry at or before now fires on the next advance().
  void schedule(timer_link& t, std::uint32_t expires) noexcept;
  // Unschedules `t`; a no-op when it is not scheduled.
  void cancel(timer_link& t) noexcept;

  // Moves time forward to `now` and calls on_expired(timer_link&) once for every entry due,
  // already unscheduled. The callback may schedule or cancel any entry, this one included.
  template <class F>
  void advance(std::uint32_t now, F&& on_expired);

  // Milliseconds until the next entry may fire: 0 when one is due, -1 when the wheel is empty.
  // Exact for entries within the current 256 ms span, otherwise the time to the next cascade.
  std::int64_t next_timeout() const noexcept;

 private:
  static constexpr int levels = 4;
  static constexpr int slots = 256;

  static bool before_or_at(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) <= 0;
  }
  static void link(timer_link*& head, timer_link& t) noexcept;
  static void unlink(timer_link& t) noexcept;
  void place(timer_link& t) noexcept;
  void cascade(int level, std::uint32_t tick) noexcept;
  template <class F>
  void fire_list(timer_link*& head, F& on_expired);

  std::uint32_t now_;
  std::size_t size_ = 0;
  timer_link* due_ = nullptr;  // scheduled at or before now: fire on the next advance
  std::array<std::array<timer_link*, slots>, levels> wheel_{};
  // Level-0 slots that may hold entries: set when one is linked there, cleared lazily by
  // next_timeout() when it finds the slot empty. next_timeout() runs every loop turn, so it
  // looks at 4 words instead of up to 255 slot heads.
  mutable std::array<std::uint64_t, slots / 64> level0_bits_{};
};

template <class F>
void timer_wheel::fire_list(timer_link*& head, F& on_expired) {
  // Detach the list first so the callback can schedule into this very slot without looping.
  timer_link* pending = head;
  head = nullptr;
  if (pending) pending->pprev = &pending;
  while (pending) {
    timer_link* t = pending;
    unlink(*t);
    --size_;
    on_expired(*t);
  }
}

template <class F>
void timer_wheel::advance(std::uint32_t now, F&& on_expired) {
  fire_list(due_, on_expired);
  // Step tick by tick: a loop that slept for a second walks 1,000 slot heads, about a
  // microsecond, and a busy loop advances by 0 or 1 tick per turn.
  while (static_cast<std::int32_t>(now - now_) > 0) {
    ++now_;
    for (int level = levels - 1; level > 0; --level) {
      std::uint32_t low_mask = (1u << (8 * level)) - 1;
      if ((now_ & low_mask) == 0) cascade(level, now_);
    }
    fire_list(wheel_[0][now_ & (slots - 1)], on_expired);
  }
}

}  // namespace nbio
