// Public. Pub/sub over WebSocket connections: connections subscribe to named topics, and any
// thread publishes to a topic.
//
//   nbio::websocket::topics hub(eng, {.max_queued = 256 * 1024});
//   // in on_message, on the connection's thread:
//   hub.subscribe(ws, "prices/EURUSD");
//   // anywhere:
//   hub.publish("prices/EURUSD", R"({"bid":1.0841})");
//
// A message is framed once, into one buffer shared by all its subscribers; each loop gets one
// task per publish, which writes that buffer to the loop's own subscribers of the topic (the
// engine copies bytes only for a subscriber whose socket does not take them at once). The
// subscriber lists are per loop and touched only by their loop's thread: no lock on publish,
// subscribe or delivery. Publishes from one thread reach each subscriber in order.
//
// With permessage-deflate (endpoint_options::deflate), a message from the threshold up is
// compressed once per publish, by the first loop that has a subscriber for it, and that one
// buffer goes to every loop-served subscriber without a compression context of its own (the
// shared policy, or sliding past its count); a subscriber whose compressor keeps its context
// (dedicated) compresses it through that context, and a blocking-mode subscriber gets the
// uncompressed frame (always valid: RSV1 clear).
//
// Slow subscribers: one with more than max_queued bytes waiting in its write queue either
// misses the message (slow_policy::drop, counted in dropped()) or is closed with 1008 "too
// slow" (slow_policy::close). The bytes waiting are conn_handle::queued_bytes(): the write
// queue of a loop-served connection, or for a blocking-mode one (io_mode blocking, the first
// ones of mixed mode) what was handed to its thread and not yet written; such a connection's
// close waits until its thread is out of the write it is blocked in (its write timeout bounds
// that). Connections that closed leave their topics by themselves (their
// entries are dropped at the next publish); unsubscribe() is for a connection that stays.
//
// Thread affinity: subscribe/unsubscribe on the connection's thread; publish and the counters
// from any thread. Lifetime: like the server, stop the engine before destroying the hub.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nbio/engine/engine.hpp"
#include "nbio/websocket/connection.hpp"

namespace nbio::websocket {

enum class slow_policy : std::uint8_t { drop, close };

struct topics_options {
  std::size_t max_queued = 1u << 20;  // bytes queued for a subscriber before the policy applies
  slow_policy on_slow = slow_policy::drop;
};

class topics {
 public:
  explicit topics(nbio::engine& eng, topics_options options = {});
  ~topics();
  topics(const topics&) = delete;
  topics& operator=(const topics&) = delete;

  // The connection's thread. Subscribing twice to one topic is one subscription.
  void subscribe(connection& ws, std::string_view topic);
  void unsubscribe(connection& ws, std::string_view topic);
  // Any thread: frames `data` once and hands it to every loop.
  void publish(std::string_view topic, std::string_view data, bool binary = false);

  // Any thread, relaxed counters: messages written to a subscriber, and skipped or closed for
  // being slow.
  std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

  struct per_loop;  // one loop's subscriber lists (private)

 private:
  void on_loop(nbio::loop& l, std::function<void(per_loop&)> fn);

  nbio::engine& eng_;
  topics_options options_;
  std::vector<std::unique_ptr<per_loop>> loops_;
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace nbio::websocket
