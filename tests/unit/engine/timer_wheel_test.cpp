// Unit: the hierarchical timing wheel. No loop, no socket: ticks are driven by hand.
#include "nbio/engine/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

using nbio::timer_link;
using nbio::timer_wheel;

// Advances to `to` and returns how many entries fired; checks each fired on its own tick.
int advance_counting(timer_wheel& w, std::uint32_t to) {
  int fired = 0;
  w.advance(to, [&](timer_link& t) {
    EXPECT_EQ(t.expires, w.now()) << "entry fired on the wrong tick";
    EXPECT_FALSE(t.scheduled()) << "entries are unscheduled before the callback";
    ++fired;
  });
  return fired;
}

struct start_delay {
  std::uint32_t start;
  std::uint32_t delay;
};

// Starts just below each level boundary (256, 65536, 2^24) and the 32-bit wrap, with delays
// that land on, just before and just after each boundary.
std::vector<start_delay> boundary_cases() {
  std::vector<start_delay> cases;
  const std::uint32_t starts[] = {0,         1,          0xf0,       0xff,       0x100,
                                  0xfff0,    0xffff,     0x10000,    0xfffff0,   0xffffff,
                                  0x1000000, 0xfffffff0, 0xffffffff, 0x12345678, 0x7ffffff0};
  const std::uint32_t delays[] = {1,   2,    15,    16,    17,    255,    256,    257,    511,
                                  512, 4095, 65535, 65536, 65537, 131072, 200000, 0xfffff};
  for (auto s : starts)
    for (auto d : delays)
      cases.push_back({s, d});
  // Past the third level (2^24 ticks) from a few starts only: the walk is tick by tick.
  for (std::uint32_t s : {0u, 0xfffffff0u, 0x00ffff00u}) {
    cases.push_back({s, 0x1000000});
    cases.push_back({s, 0x1000001});
  }
  return cases;
}

TEST(timer_wheel, entry_fires_exactly_at_its_tick_across_level_boundaries) {
  for (auto [start, delay] : boundary_cases()) {
    SCOPED_TRACE(::testing::Message() << "start=" << start << " delay=" << delay);
    timer_wheel w(start);
    timer_link t;
    const std::uint32_t expires = start + delay;
    w.schedule(t, expires);
    ASSERT_TRUE(t.scheduled());
    ASSERT_EQ(w.size(), 1u);
    ASSERT_EQ(advance_counting(w, expires - 1), 0) << "fired early";
    ASSERT_EQ(w.now(), expires - 1);
    ASSERT_EQ(advance_counting(w, expires), 1) << "did not fire at its tick";
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(w.next_timeout(), -1);
  }
}

TEST(timer_wheel, entry_stepped_one_tick_at_a_time_fires_once_at_its_tick) {
  for (std::uint32_t start : {0u, 0xfeu, 0xfffeu, 0xfffffeu, 0xfffffffeu}) {
    for (std::uint32_t delay : {1u, 2u, 3u, 300u, 70000u}) {
      SCOPED_TRACE(::testing::Message() << "start=" << start << " delay=" << delay);
      timer_wheel w(start);
      timer_link t;
      w.schedule(t, start + delay);
      int fired = 0;
      for (std::uint32_t i = 1; i <= delay + 5; ++i) {
        int now_fired = advance_counting(w, start + i);
        if (i == delay) {
          ASSERT_EQ(now_fired, 1) << "tick " << i;
        } else {
          ASSERT_EQ(now_fired, 0) << "tick " << i;
        }
        fired += now_fired;
      }
      EXPECT_EQ(fired, 1);
    }
  }
}

TEST(timer_wheel, expiry_wraps_past_the_32_bit_tick) {
  timer_wheel w(0xffffff00u);
  timer_link t;
  w.schedule(t, 0x100u);  // 0x200 ticks ahead, on the far side of the wrap
  EXPECT_EQ(advance_counting(w, 0xffffffffu), 0);
  EXPECT_EQ(advance_counting(w, 0u), 0);
  EXPECT_EQ(advance_counting(w, 0xffu), 0);
  EXPECT_EQ(advance_counting(w, 0x100u), 1);
}

TEST(timer_wheel, expiry_at_or_before_now_fires_on_the_next_advance) {
  timer_wheel w(1000);
  timer_link at_now, in_past;
  w.schedule(at_now, 1000);
  w.schedule(in_past, 990);
  EXPECT_EQ(w.next_timeout(), 0);
  EXPECT_EQ(w.size(), 2u);
  int fired = 0;
  w.advance(1000, [&](timer_link&) { ++fired; });  // same tick: still fires
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(w.size(), 0u);
}

TEST(timer_wheel, clamp_delay_keeps_delays_within_the_wheel_range) {
  using w = timer_wheel;
  static_assert(w::clamp_delay(5) == 5u);
  EXPECT_EQ(w::clamp_delay(-1), 0u);
  EXPECT_EQ(w::clamp_delay(0), 0u);
  EXPECT_EQ(w::clamp_delay(1), 1u);
  EXPECT_EQ(w::clamp_delay(w::max_delay - 1), w::max_delay - 1);
  EXPECT_EQ(w::clamp_delay(w::max_delay), w::max_delay);
  EXPECT_EQ(w::clamp_delay(std::int64_t{w::max_delay} + 1), w::max_delay);
  EXPECT_EQ(w::clamp_delay(30ll * 24 * 3600 * 1000), w::max_delay);  // 30 days
  EXPECT_EQ(w::clamp_delay(0x100000000ll), w::max_delay);            // 2^32: would wrap to 0
  EXPECT_EQ(w::clamp_delay(INT64_MAX), w::max_delay);
  EXPECT_EQ(w::clamp_delay(INT64_MIN), 0u);
}

TEST(timer_wheel, clamped_huge_delay_is_not_due_after_the_32_bit_wrap_point) {
  // 50 days unclamped would wrap to ~6.8 days; clamped it is 24.8 days away.
  timer_wheel w(0xfffff000u);
  timer_link t;
  w.schedule(t, w.now() + timer_wheel::clamp_delay(50ll * 24 * 3600 * 1000));
  EXPECT_GT(w.next_timeout(), 0);
  EXPECT_EQ(advance_counting(w, w.now() + (1u << 20)), 0);  // past the wrap: still pending
  EXPECT_TRUE(t.scheduled());
}

TEST(timer_wheel, max_delay_entry_is_not_due) {
  timer_wheel w(12345);
  timer_link t;
  w.schedule(t, 12345u + timer_wheel::max_delay);
  EXPECT_EQ(t.expires, 12345u + timer_wheel::max_delay);
  EXPECT_GT(w.next_timeout(), 0);
  // The first 2^20 ticks (17 minutes) bring nothing.
  EXPECT_EQ(advance_counting(w, 12345u + (1u << 20)), 0);
  EXPECT_TRUE(t.scheduled());
}

TEST(timer_wheel, cancel_before_expiry_prevents_firing) {
  timer_wheel w(0);
  timer_link t;
  w.schedule(t, 100);
  w.cancel(t);
  EXPECT_FALSE(t.scheduled());
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(advance_counting(w, 1000), 0);
}

TEST(timer_wheel, cancel_after_entry_cascaded_to_a_lower_level) {
  timer_wheel w(0);
  timer_link t;
  w.schedule(t, 70000);        // level 2
  advance_counting(w, 65600);  // cascaded down to level 1, then 0 on the way
  ASSERT_TRUE(t.scheduled());
  w.cancel(t);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(advance_counting(w, 80000), 0);
}

TEST(timer_wheel, cancel_of_unscheduled_entry_is_a_noop) {
  timer_wheel w(0);
  timer_link t, other;
  w.schedule(other, 10);
  w.cancel(t);
  w.cancel(t);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(advance_counting(w, 10), 1);
}

TEST(timer_wheel, reschedule_moves_the_entry_instead_of_adding_it_twice) {
  timer_wheel w(0);
  timer_link t;
  w.schedule(t, 100);
  w.schedule(t, 50);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(advance_counting(w, 49), 0);
  EXPECT_EQ(advance_counting(w, 50), 1);
  EXPECT_EQ(advance_counting(w, 200), 0) << "the old expiry must be gone";
  w.schedule(t, 70000);
  w.schedule(t, 300);  // from level 2 back to level 1
  EXPECT_EQ(advance_counting(w, 299), 0);
  EXPECT_EQ(advance_counting(w, 300), 1);
  EXPECT_EQ(advance_counting(w, 80000), 0);
}

TEST(timer_wheel, rescheduling_from_inside_the_callback_repeats_at_each_interval) {
  timer_wheel w(0xfffffe00u);  // crosses the 32-bit wrap on the way
  timer_link t;
  std::vector<std::uint32_t> fired_at;
  w.schedule(t, w.now() + 10);
  w.advance(w.now() + 1000, [&](timer_link& e) {
    fired_at.push_back(w.now());
    w.schedule(e, w.now() + 10);
  });
  ASSERT_EQ(fired_at.size(), 100u);
  for (std::size_t i = 0; i < fired_at.size(); ++i)
    EXPECT_EQ(fired_at[i], 0xfffffe00u + 10u * static_cast<std::uint32_t>(i + 1));
  EXPECT_TRUE(t.scheduled());
  EXPECT_EQ(w.size(), 1u);
}

TEST(timer_wheel, rescheduling_to_now_inside_the_callback_fires_on_the_next_advance) {
  timer_wheel w(0);
  timer_link t;
  w.schedule(t, 5);
  int fired = 0;
  auto cb = [&](timer_link& e) {
    if (++fired == 1) w.schedule(e, w.now());  // must not loop inside this advance
  };
  w.advance(5, cb);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(w.next_timeout(), 0);
  w.advance(5, cb);
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(w.size(), 0u);
}

TEST(timer_wheel, callback_cancelling_another_entry_due_on_the_same_tick) {
  timer_wheel w(0);
  timer_link a, b;
  w.schedule(a, 10);
  w.schedule(b, 10);
  int fired = 0;
  w.advance(20, [&](timer_link& e) {
    ++fired;
    w.cancel(&e == &a ? b : a);
  });
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(w.size(), 0u);
}

TEST(timer_wheel, callback_scheduling_a_new_entry_into_the_slot_being_fired) {
  timer_wheel w(0);
  timer_link a, b;
  w.schedule(a, 300);
  int fired_a = 0, fired_b = 0;
  w.advance(600, [&](timer_link& e) {
    if (&e == &a) {
      ++fired_a;
      w.schedule(b, w.now() + 256);  // same level-0 slot index, one span later
    } else {
      ++fired_b;
      EXPECT_EQ(w.now(), 556u);
    }
  });
  EXPECT_EQ(fired_a, 1);
  EXPECT_EQ(fired_b, 1);
}

TEST(timer_wheel, next_timeout_is_minus_one_when_empty_and_zero_when_due) {
  timer_wheel w(0);
  EXPECT_EQ(w.next_timeout(), -1);
  timer_link t;
  w.schedule(t, 0);
  EXPECT_EQ(w.next_timeout(), 0);
  w.cancel(t);
  EXPECT_EQ(w.next_timeout(), -1);
}

TEST(timer_wheel, next_timeout_is_exact_within_the_current_span) {
  timer_wheel w(10);
  timer_link t;
  w.schedule(t, 15);
  EXPECT_EQ(w.next_timeout(), 5);
  w.schedule(t, 255);
  EXPECT_EQ(w.next_timeout(), 245);
}

TEST(timer_wheel, next_timeout_beyond_the_span_wakes_no_later_than_the_expiry) {
  timer_wheel w(10);
  timer_link t;
  w.schedule(t, 300);
  auto first = w.next_timeout();
  EXPECT_GT(first, 0);
  EXPECT_LE(first, 290);
  // Following next_timeout() from wake-up to wake-up reaches the entry on its exact tick.
  int fired = 0, wakeups = 0;
  while (fired == 0 && wakeups < 100) {
    auto wait = w.next_timeout();
    ASSERT_GT(wait, 0);
    fired += advance_counting(w, w.now() + static_cast<std::uint32_t>(wait));
    ++wakeups;
  }
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(w.now(), 300u);
}

TEST(timer_wheel, next_timeout_never_overshoots_the_earliest_entry) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::uint32_t start = rng();
    timer_wheel w(start);
    std::vector<timer_link> links(1 + rng() % 20);
    std::uint32_t earliest = UINT32_MAX;
    for (auto& l : links) {
      std::uint32_t delay = 1 + rng() % (rng() % 2 ? 300 : 200000);
      earliest = std::min(earliest, delay);
      w.schedule(l, start + delay);
    }
    auto wait = w.next_timeout();
    ASSERT_GT(wait, 0);
    ASSERT_LE(wait, static_cast<std::int64_t>(earliest)) << "would sleep past an expiry";
    if ((start & 255u) + earliest <= 255u) {  // within the current 256-tick span: exact
      EXPECT_EQ(wait, static_cast<std::int64_t>(earliest));
    }
  }
}

TEST(timer_wheel, many_random_entries_each_fire_exactly_once_at_their_tick) {
  std::mt19937 rng(42);
  for (std::uint32_t start : {0u, 0xfff00000u, 0xffff0000u}) {
    SCOPED_TRACE(::testing::Message() << "start=" << start);
    timer_wheel w(start);
    std::vector<timer_link> links(10000);
    std::vector<int> fired(links.size(), 0);
    std::uint32_t last = start;
    for (auto& l : links) {
      std::uint32_t delay = rng() % 3 == 0 ? rng() % 300 : rng() % 300000;
      w.schedule(l, start + delay);
      if (static_cast<std::int32_t>(start + delay - last) > 0) last = start + delay;
    }
    ASSERT_EQ(w.size(), links.size());
    auto on_expired = [&](timer_link& t) {
      ASSERT_EQ(t.expires, w.now());
      ++fired[static_cast<std::size_t>(&t - links.data())];
    };
    w.advance(start, on_expired);  // the delay-0 entries
    // Uneven steps: single ticks, exact boundaries and long jumps.
    while (static_cast<std::int32_t>(last - w.now()) > 0) {
      std::uint32_t step = rng() % 4 == 0 ? 1 : 1 + rng() % 5000;
      w.advance(w.now() + step, on_expired);
    }
    EXPECT_EQ(w.size(), 0u);
    for (std::size_t i = 0; i < fired.size(); ++i)
      ASSERT_EQ(fired[i], 1) << "entry " << i << " expires " << links[i].expires;
  }
}

TEST(timer_wheel, cancelling_half_of_many_entries_fires_only_the_rest) {
  std::mt19937 rng(3);
  timer_wheel w(0);
  std::vector<timer_link> links(5000);
  for (auto& l : links)
    w.schedule(l, 1 + rng() % 100000);
  for (std::size_t i = 0; i < links.size(); i += 2)
    w.cancel(links[i]);
  EXPECT_EQ(w.size(), links.size() / 2);
  std::vector<int> fired(links.size(), 0);
  w.advance(100001, [&](timer_link& t) { ++fired[static_cast<std::size_t>(&t - links.data())]; });
  for (std::size_t i = 0; i < links.size(); ++i)
    EXPECT_EQ(fired[i], i % 2 ? 1 : 0) << i;
}

}  // namespace
