// Integration: a loop's timers and its cross-thread post().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "nbio/engine/engine.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

// Runs fn on the loop's thread and returns its result.
template <class F>
auto on_loop(nbio::loop& l, F fn) -> decltype(fn()) {
  // The task owns the promise: set_value may still run after get() returned here.
  auto p = std::make_shared<std::promise<decltype(fn())>>();
  auto f = p->get_future();
  l.post([p, &fn] { p->set_value(fn()); });
  return f.get();
}

TEST(loop, add_timer_fires_once_on_the_loop_thread) {
  nbio::engine eng({.loops = 2});
  eng.start();
  nbio::loop& l = eng.loop_at(1);
  std::atomic<int> fired{0};
  std::atomic<bool> on_thread{false};
  on_loop(l, [&] {
    return l.add_timer(20ms, [&] {
      on_thread = l.in_loop_thread();
      fired.fetch_add(1);
    });
  });
  EXPECT_TRUE(wait_until([&] { return fired.load() == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fired.load(), 1);
  EXPECT_TRUE(on_thread.load());
  EXPECT_FALSE(l.in_loop_thread());
  eng.stop();
}

TEST(loop, repeating_timer_fires_until_cancelled_from_its_own_callback) {
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  std::atomic<int> fired{0};
  nbio::timer_id id{};  // loop thread only
  on_loop(l, [&] {
    id = l.add_repeating_timer(10ms, [&] {
      if (fired.fetch_add(1) + 1 == 5) {
        EXPECT_TRUE(l.cancel_timer(id));
      }
    });
    return 0;
  });
  EXPECT_TRUE(wait_until([&] { return fired.load() >= 5; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(fired.load(), 5);
  eng.stop();
}

TEST(loop, cancel_of_a_pending_timer_is_true_and_of_a_fired_one_false) {
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  std::atomic<int> fired{0};
  nbio::timer_id pending = on_loop(l, [&] { return l.add_timer(60s, [&] { ++fired; }); });
  nbio::timer_id quick = on_loop(l, [&] { return l.add_timer(1ms, [&] { ++fired; }); });
  ASSERT_TRUE(wait_until([&] { return fired.load() == 1; }));
  EXPECT_TRUE(on_loop(l, [&] { return l.cancel_timer(pending); }));
  EXPECT_FALSE(on_loop(l, [&] { return l.cancel_timer(pending); })) << "cancelled twice";
  EXPECT_FALSE(on_loop(l, [&] { return l.cancel_timer(quick); })) << "already fired";
  eng.stop();
}

TEST(loop, timer_delay_past_24_days_is_clamped_not_fired_at_once) {
  // 30 days is past 2^31 ms and 50 days past 2^32 ms: unclamped, they wrap to "now" or to a
  // few days. Timers are added over several loop turns and clock ticks, so a clamp computed
  // against a clock other than the wheel's would show.
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  std::atomic<int> fired{0};
  const std::chrono::milliseconds delays[] = {
      std::chrono::hours(24 * 30), std::chrono::hours(24 * 50),
      std::chrono::milliseconds(0x100000000LL), std::chrono::milliseconds(0x7fffffffLL),
      std::chrono::hours(24 * 365 * 100)};
  std::vector<nbio::timer_id> ids;
  for (int round = 0; round < 4; ++round) {
    for (auto delay : delays) {
      ids.push_back(on_loop(l, [&] { return l.add_timer(delay, [&] { ++fired; }); }));
      std::this_thread::sleep_for(2ms);
    }
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fired.load(), 0) << "a clamped timer fired at once";
  int cancelled = 0;
  for (auto id : ids)
    cancelled += on_loop(l, [&] { return l.cancel_timer(id); }) ? 1 : 0;
  EXPECT_EQ(cancelled, static_cast<int>(ids.size()));
  eng.stop();
}

TEST(loop, now_ms_advances_with_the_clock) {
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  std::uint32_t first = on_loop(l, [&] { return l.now_ms(); });
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(wait_until([&] { return on_loop(l, [&] { return l.now_ms(); }) > first; }));
  eng.stop();
}

TEST(threading_loop, post_from_8_threads_keeps_per_thread_order) {
  constexpr int threads = 8, per_thread = 5000;
  nbio::engine eng({.loops = 2});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  std::vector<int> next(threads, 0);  // touched on the loop thread only
  std::atomic<int> out_of_order{0}, done{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < threads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        l.post([&, t, i] {
          if (next[t] != i) out_of_order.fetch_add(1);
          next[t] = i + 1;
          done.fetch_add(1, std::memory_order_release);
        });
      }
    });
  }
  for (auto& p : posters)
    p.join();
  EXPECT_TRUE(wait_until([&] { return done.load() == threads * per_thread; }, 30s)) << done.load();
  EXPECT_EQ(out_of_order.load(), 0);
  eng.stop();
}

TEST(threading_loop, post_after_stop_is_dropped) {
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& l = eng.loop_at(0);
  eng.stop();
  std::atomic<bool> ran{false};
  l.post([&] { ran = true; });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(ran.load());
}

}  // namespace
