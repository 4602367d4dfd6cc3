// Integration: websocket::topics over real loopback sockets in the three I/O modes: published
// messages reach the subscribers of their topic only, in order, across loops; unsubscribing and
// closing leave a topic; a subscriber that does not read is skipped (drop) or closed (close)
// while the others keep up.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "nbio/websocket/topics.hpp"
#include "support/raw_socket.hpp"
#include "support/wait.hpp"
#include "support/ws_test_server.hpp"

namespace {

using namespace nbio_test;
using namespace nbio::websocket;
using namespace std::chrono_literals;

// "sub:T" subscribes to T, "unsub:T" leaves it; answers "ok" after either.
struct subscriber_handler {
  // Set by the test thread once the server runs; read by the connections' threads. The
  // ordering is real (set before the client connects) but goes through the kernel, which TSan
  // does not see: an atomic says it.
  std::atomic<topics*> hub{nullptr};
  std::atomic<int> subscribed{0};
  void on_message(connection& ws, std::string_view d, bool) {
    if (d.starts_with("sub:")) {
      hub.load()->subscribe(ws, d.substr(4));
      subscribed.fetch_add(1);
    } else if (d.starts_with("unsub:")) {
      hub.load()->unsubscribe(ws, d.substr(6));
    }
    ws.send("ok");
  }
};

// "n<i>", built without operator+ (g++ 12 warns falsely about it).
std::string news(int i) {
  std::string s = "n";
  s += std::to_string(i);
  return s;
}

class ws_topics : public ::testing::TestWithParam<nbio::io_mode> {
 protected:
  // close_timeout 1 s: the close policy's 1008 waits for a peer that never answers it.
  void SetUp() override {
    endpoint_options o;
    o.close_timeout = std::chrono::seconds(1);
    server_ = std::make_unique<ws_test_server>(h_, GetParam(), o);
  }
  void TearDown() override {
    server_.reset();  // the engine stops before the hub goes
    hub_.reset();
  }
  topics& hub(topics_options o = {}) {
    hub_ = std::make_unique<topics>(server_->engine(), o);
    h_.hub = hub_.get();
    return *hub_;
  }
  // A client past the handshake, subscribed to `topic` (when not empty).
  unique_fd client(std::string_view topic, int rcvbuf = 0) {
    unique_fd fd = rcvbuf ? connect_small_rcvbuf(server_->address(), rcvbuf)
                          : connect_stream(server_->address());
    EXPECT_TRUE(send_all(fd.get(), ws_upgrade_request));
    EXPECT_EQ(recv_exact(fd.get(), ws_switching.size()).data, ws_switching);
    if (!topic.empty()) {
      EXPECT_TRUE(
          send_all(fd.get(), client_frame(opcode::text, std::string("sub:").append(topic))));
      EXPECT_EQ(recv_exact(fd.get(), 4).data, server_frame(opcode::text, "ok"));
    }
    return fd;
  }

  subscriber_handler h_;
  std::unique_ptr<ws_test_server> server_;
  std::unique_ptr<topics> hub_;
};

TEST_P(ws_topics, a_publish_reaches_the_topics_subscribers_only_in_order) {
  topics& t = hub();
  unique_fd a = client("news"), b = client("news"), c = client("sports"), d = client("news");
  for (int i = 0; i < 20; ++i)
    t.publish("news", news(i));
  t.publish("sports", "goal", true);
  std::string want;
  for (int i = 0; i < 20; ++i)
    want += server_frame(opcode::text, news(i));
  for (unique_fd* fd : {&a, &b, &d})
    EXPECT_EQ(recv_exact(fd->get(), want.size()).data, want);
  EXPECT_EQ(recv_exact(c.get(), 6).data, server_frame(opcode::binary, "goal"));
  EXPECT_TRUE(recv_for(c.get(), 100ms).data.empty()) << "a news message reached sports";
  EXPECT_TRUE(wait_until([&] { return t.delivered() == 61; })) << t.delivered();
}

TEST_P(ws_topics, unsubscribed_and_closed_connections_leave_the_topic) {
  topics& t = hub();
  unique_fd stays = client("x"), leaves = client("x"), closes = client("x");
  ASSERT_TRUE(send_all(leaves.get(), client_frame(opcode::text, "unsub:x")));
  EXPECT_EQ(recv_exact(leaves.get(), 4).data, server_frame(opcode::text, "ok"));
  closes.reset();
  std::this_thread::sleep_for(100ms);
  t.publish("x", "hi");
  EXPECT_EQ(recv_exact(stays.get(), 4).data, server_frame(opcode::text, "hi"));
  EXPECT_TRUE(recv_for(leaves.get(), 100ms).data.empty());
  EXPECT_TRUE(wait_until([&] { return t.delivered() == 1; })) << t.delivered();
}

// The slow-subscriber policies read conn_handle::queued_bytes: the write queue of loop-served
// connections, what waits for a blocking-mode connection's thread (blocked in its write).
class ws_topics_slow : public ws_topics {};

TEST_P(ws_topics_slow, a_subscriber_that_does_not_read_is_skipped_while_others_get_everything) {
  topics& t = hub({.max_queued = 64 * 1024, .on_slow = slow_policy::drop});
  unique_fd slow = client("feed", 4096);
  unique_fd fast = client("feed");
  const std::string payload(16 * 1024, 'p');
  const std::string frame = server_frame(opcode::binary, payload);
  constexpr int messages = 200;  // 3.2 MiB: far past the slow one's socket and cap
  std::string got;
  for (int i = 0; i < messages; ++i) {
    t.publish("feed", payload, true);
    got += recv_exact(fast.get(), frame.size(), 5s).data;
  }
  EXPECT_EQ(got.size(), frame.size() * messages);
  EXPECT_TRUE(wait_until([&] { return t.dropped() > 0; })) << "the slow subscriber was not skipped";
  // Every publish counted once per subscriber (the slow one's loop may finish its task last).
  EXPECT_TRUE(wait_until([&] { return t.delivered() + t.dropped() == 2u * messages; }))
      << t.delivered() << " + " << t.dropped();
}

TEST_P(ws_topics_slow, with_the_close_policy_a_slow_subscriber_is_closed_with_1008) {
  topics& t = hub({.max_queued = 64 * 1024, .on_slow = slow_policy::close});
  unique_fd slow = client("feed", 4096);
  const std::string payload(16 * 1024, 'p');
  for (int i = 0; i < 200 && t.dropped() == 0; ++i) {
    t.publish("feed", payload, true);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(wait_until([&] { return t.dropped() > 0; }));
  // Reading now: the messages that fit, then the close frame with 1008.
  const read_result r = recv_until_eof(slow.get(), 10s);
  std::string payload_1008("\x03\xf0", 2);
  payload_1008 += "too slow";
  const std::string close = server_frame(opcode::close, payload_1008);
  EXPECT_NE(r.data.find(close), std::string::npos) << "no 1008 close frame";
}

INSTANTIATE_TEST_SUITE_P(ws_topics_loop, ws_topics, ::testing::Values(nbio::io_mode::nonblocking),
                         io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_topics_loop, ws_topics_slow,
                         ::testing::Values(nbio::io_mode::nonblocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_topics_blocking, ws_topics,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_topics_mixed, ws_topics,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_topics_blocking, ws_topics_slow,
                         ::testing::Values(nbio::io_mode::blocking), io_mode_name);
INSTANTIATE_TEST_SUITE_P(ws_threading_topics_mixed, ws_topics_slow,
                         ::testing::Values(nbio::io_mode::mixed), io_mode_name);

}  // namespace
