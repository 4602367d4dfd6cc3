// timers: loop timers (one-shot, repeating, cancelled) and loop::post from another thread.
//
// Timers belong to a loop and are set, fired and cancelled on its thread only; loop::post is
// how any other thread gets code onto it. Runs for about a quarter of a second and exits.
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include <nbio/nbio.hpp>

using namespace std::chrono_literals;

int main() {
  nbio::engine eng({.loops = 1});
  eng.start();
  nbio::loop& lp = eng.loop_at(0);

  const auto start = std::chrono::steady_clock::now();
  auto say = [start](const char* what) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    std::printf("[%4lld ms] %s\n", static_cast<long long>(ms.count()), what);
    std::fflush(stdout);
  };
  std::printf("main thread: in_loop_thread() = %s\n", lp.in_loop_thread() ? "true" : "false");

  int ticks = 0;  // loop thread only, like the timers
  nbio::timer_id repeating;
  std::promise<int> finished;

  // Timers may only be set on the loop's thread: post the setup there.
  lp.post([&] {
    say(lp.in_loop_thread() ? "setup runs on the loop thread" : "setup: wrong thread");
    lp.add_timer(100ms, [&] { say("one-shot timer: 100 ms"); });
    const nbio::timer_id never = lp.add_timer(50ms, [&] { say("cancelled timer fired (bug)"); });
    if (lp.cancel_timer(never)) say("cancelled a 50 ms timer before it fired");
    repeating = lp.add_repeating_timer(40ms, [&] {
      say("repeating timer: every 40 ms, three times");
      if (++ticks == 3) lp.cancel_timer(repeating);  // a timer may cancel itself
    });
    lp.add_timer(250ms, [&] {
      say("one-shot timer: 250 ms; the repeating timer stayed cancelled");
      finished.set_value(ticks);
    });
  });

  // Any thread may post; tasks from one thread run in the order posted.
  std::thread worker([&] {
    for (int i = 1; i <= 3; ++i) {
      lp.post([&, i] {
        std::printf("posted task %d from the worker thread, on the loop thread: %s\n", i,
                    lp.in_loop_thread() ? "yes" : "no");
      });
    }
  });
  worker.join();

  auto result = finished.get_future();
  const bool done = result.wait_for(5s) == std::future_status::ready;
  eng.stop();  // not from a loop thread: the main thread stops the engine
  const int fired = done ? result.get() : -1;
  std::printf("repeating timer fired %d times\n", fired);
  return fired == 3 ? 0 : 1;
}
