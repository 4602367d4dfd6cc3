// Private. Pub/sub: per-loop subscriber lists, one task per loop per publish.
#include "nbio/websocket/topics.hpp"

#include <algorithm>
#include <unordered_map>

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

void topics::publish(std::string_view topic, std::string_view data, bool binary) {
  auto frame = std::make_shared<const std::string>(frame_message(data, binary));
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    per_loop* p = loops_[i].get();
    eng_.loop_at(i).post([this, p, t = std::string(topic), frame] {
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
        if (nbio::conn* c = h.get()) {
          if (c->queued_bytes() > options_.max_queued) {
            ++slow;
            if (options_.on_slow == slow_policy::close) {
              connection ws(*c);
              ws.close(close_code::policy_violation, "too slow");
            }
            continue;
          }
          c->write(*frame);
        } else {
          h.write(*frame);  // a blocking-mode connection: its own thread writes a copy
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
