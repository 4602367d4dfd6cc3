// Private. Pub/sub: per-loop subscriber lists, one task per loop per publish.
#include "nbio/websocket/topics.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "websocket/session.hpp"

namespace nbio::websocket {

// Touched only by its loop's thread.
struct topics::per_loop {
  struct hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::vector<nbio::conn_handle>, hash, std::equal_to<>> lists;
};

topics::topics(nbio::engine& eng, topics_options options) : eng_(eng), options_(options) {
  for (std::size_t i = 0; i < eng.loop_count(); ++i)
    loops_.push_back(std::make_unique<per_loop>());
}

topics::~topics() = default;

// Runs fn with the loop's lists on its thread: now when called there, else posted.
void topics::on_loop(nbio::loop& l, std::function<void(per_loop&)> fn) {
  per_loop& p = *loops_[l.index()];
  if (l.in_loop_thread()) return fn(p);
  l.post([&p, fn = std::move(fn)] { fn(p); });
}

void topics::subscribe(connection& ws, std::string_view topic) {
  on_loop(ws.raw().owner_loop(), [h = ws.handle(), t = std::string(topic)](per_loop& p) {
    auto it = p.lists.find(t);
    if (it == p.lists.end()) it = p.lists.emplace(t, std::vector<nbio::conn_handle>{}).first;
    auto& list = it->second;
    if (std::find(list.begin(), list.end(), h) == list.end()) list.push_back(h);
  });
}

void topics::unsubscribe(connection& ws, std::string_view topic) {
  on_loop(ws.raw().owner_loop(), [h = ws.handle(), t = std::string(topic)](per_loop& p) {
    auto it = p.lists.find(t);
    if (it == p.lists.end()) return;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), h), list.end());
    if (list.empty()) p.lists.erase(it);
  });
}

namespace {

// One publish, shared by the loops' tasks: the plain frame, and the message compressed once
// (permessage-deflate without context) by the first loop that meets a subscriber for it.
struct published {
  std::string plain;  // the uncompressed frame: blocking-mode subscribers and those without
  std::string data;   // the message, for subscribers that compress with their own context
  bool binary = false;
  std::once_flag once;
  std::string compressed;  // "" when it does not shrink
  int bits = 15;           // the window it was compressed with

  // The compressed frame for a loop-served subscriber `st` that agreed permessage-deflate
  // without context takeover, or nullptr when that subscriber needs its own compression (a
  // smaller window than the shared frame's) or the message does not shrink.
  const std::string* compressed_for(const detail::ws_state& st) {
    std::call_once(once, [&] {
      bits = detail::tx_window_bits(st);
      compressed = detail::compressed_frame(st, data, binary);
    });
    if (detail::tx_window_bits(st) < bits) return nullptr;
    return compressed.empty() ? &plain : &compressed;
  }
};

// Writes one publish to a loop-served subscriber: uncompressed, compressed once for all, or
// (a subscriber whose compressor keeps its context) through its own compressor.
void deliver(nbio::conn& c, published& pub) {
  const detail::ws_state& st = detail::state(c);
  if (!(st.z & detail::z_on) || !st.s || pub.data.size() < st.s->deflate.threshold) {
    c.write(pub.plain);
    return;
  }
  const std::string* f = (st.z & detail::z_tx_keep) ? nullptr : pub.compressed_for(st);
  if (f) {
    c.write(*f);
    return;
  }
  connection ws(c);
  ws.send(pub.data, pub.binary);
}

}  // namespace

void topics::publish(std::string_view topic, std::string_view data, bool binary) {
  auto pub = std::make_shared<published>();
  pub->plain = frame_message(data, binary);
  pub->data.assign(data);
  pub->binary = binary;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    per_loop* p = loops_[i].get();
    eng_.loop_at(i).post([this, p, t = std::string(topic), pub] {
      auto it = p->lists.find(t);
      if (it == p->lists.end()) return;
      auto& list = it->second;
      std::uint64_t sent = 0, slow = 0;
      for (std::size_t k = 0; k < list.size();) {
        const nbio::conn_handle h = list[k];
        if (!h.alive()) {  // closed: leave the topic (order among subscribers does not matter)
          list[k] = list.back();
          list.pop_back();
          continue;
        }
        ++k;
        nbio::conn* c = h.get();  // nullptr: a blocking-mode connection (its own thread)
        if (h.queued_bytes() > options_.max_queued) {
          ++slow;
          if (options_.on_slow == slow_policy::close) {
            if (c) {
              connection(*c).close(close_code::policy_violation, "too slow");
            } else {
              h.post([](nbio::conn& bc) {
                connection(bc).close(close_code::policy_violation, "too slow");
              });
            }
          }
          continue;
        }
        if (c) {
          deliver(*c, *pub);
        } else {
          h.write(pub->plain);  // its own thread writes a copy
        }
        ++sent;
      }
      if (list.empty()) p->lists.erase(it);
      delivered_.fetch_add(sent, std::memory_order_relaxed);
      dropped_.fetch_add(slow, std::memory_order_relaxed);
    });
  }
}

}  // namespace nbio::websocket
