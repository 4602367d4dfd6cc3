// Integration: pause_read / resume_read (backpressure on the read side).
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <mutex>
#include <string>
#include <thread>

#include "support/conn_events.hpp"
#include "support/conn_mode.hpp"
#include "support/raw_socket.hpp"
#include "support/test_server.hpp"
#include "support/wait.hpp"

namespace {

using namespace nbio_test;

struct received_bytes {
  std::mutex mutex;
  std::string data;
  std::string get() {
    std::lock_guard lock(mutex);
    return data;
  }
};

// Pauses in on_open (or after each on_data when `pause_each`) and records what arrives.
struct pausing_reader {
  conn_events* events;
  received_bytes* got;
  bool pause_each = false;

  void on_open(nbio::conn& c) {
    if (!pause_each) c.pause_read();
    EXPECT_EQ(c.read_paused(), !pause_each);
    events->opened.push(c.handle());
  }
  void on_data(nbio::conn& c, std::string_view d) {
    {
      std::lock_guard lock(got->mutex);
      got->data.append(d);
    }
    if (pause_each) c.pause_read();
  }
  void on_close(nbio::conn&, std::error_code cause) { events->closed.push(cause); }
};

class read_pause : public ::testing::TestWithParam<conn_mode> {};

// Resumes reading from the test thread, through the handle.
void resume(nbio::conn_handle h, std::atomic<int>* was_paused) {
  EXPECT_FALSE(h.dispatch([was_paused](nbio::conn& c) {
    was_paused->store(c.read_paused() ? 1 : 0);
    c.resume_read();
  }));
}

TEST_P(read_pause, data_is_not_delivered_while_paused_and_arrives_after_resume) {
  conn_events events;
  received_bytes got;
  test_server server(pausing_reader{&events, &got}, GetParam().listen(), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "sent while paused"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(got.get(), "") << "delivered while paused";

  std::atomic<int> was_paused{-1};
  resume(events.opened.snapshot()[0], &was_paused);
  EXPECT_TRUE(wait_until([&] { return got.get() == "sent while paused"; }, 10s)) << got.get();
  EXPECT_EQ(was_paused.load(), 1);
}

TEST_P(read_pause, pause_inside_on_data_holds_back_later_bytes) {
  conn_events events;
  received_bytes got;
  test_server server(pausing_reader{&events, &got, true}, GetParam().listen(), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "first"));
  ASSERT_TRUE(wait_until([&] { return got.get() == "first"; }, 10s));
  ASSERT_TRUE(send_all(fd.get(), "second"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(got.get(), "first") << "delivered while paused";

  std::atomic<int> was_paused{-1};
  resume(events.opened.snapshot()[0], &was_paused);
  EXPECT_TRUE(wait_until([&] { return got.get() == "firstsecond"; }, 10s)) << got.get();
}

TEST_P(read_pause, data_and_fin_arriving_while_paused_are_both_delivered_after_resume) {
  conn_events events;
  received_bytes got;
  test_server server(pausing_reader{&events, &got}, GetParam().listen(), GetParam().engine());
  unique_fd fd = connect_stream(server.address());
  ASSERT_TRUE(events.opened.wait_for_size(1, 10s));
  ASSERT_TRUE(send_all(fd.get(), "last words"));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(got.get(), "");
  EXPECT_EQ(events.closed.size(), 0u) << "closed while paused: the pending bytes are lost";

  std::atomic<int> was_paused{-1};
  resume(events.opened.snapshot()[0], &was_paused);
  EXPECT_TRUE(wait_until([&] { return got.get() == "last words"; }, 10s)) << got.get();
  ASSERT_TRUE(events.closed.wait_for_size(1, 10s));
  EXPECT_EQ(events.closed.snapshot()[0], nbio::errc::eof);
}

INSTANTIATE_TEST_SUITE_P(loop, read_pause, ::testing::Values(edge_mode, level_mode),
                         conn_mode_name);
INSTANTIATE_TEST_SUITE_P(threading_blocking, read_pause, ::testing::Values(blocking_mode),
                         conn_mode_name);

}  // namespace
