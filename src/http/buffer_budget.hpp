// Private. A bound on the bytes an endpoint's connections hold for messages that are not whole
// yet (incomplete request heads, request bodies being collected, WebSocket messages being
// assembled), all its loops together, and the choice of whom to evict past it.
//
// Each of those connections has a budget_holder in the state it allocates only while a message
// is incomplete (an idle connection pays nothing). A holder reports its bytes after each change
// (update); the endpoint's total is one atomic counter. Past the limit, a connection whose
// bytes just grew is answered with the connection to evict: itself when it holds at least the
// endpoint's average (total / holders), otherwise the largest holder of its own thread.
//
// Why that choice: finding the largest holder of the whole endpoint would need a structure
// shared by every loop (a lock or a concurrent heap per event). Each thread instead keeps its
// holders in 64 intrusive lists by power of two of their size, with a bitmap of the lists in
// use, so "a largest one here" is a count-leading-zeros and moving a holder between lists is
// O(1). The victim always holds at least as much as the connection that grew (it is that one,
// or one in a higher list), and the growth is part of what the grower holds: so while the
// endpoint is over its limit, every growth frees at least as much as it added, and the total
// overshoots the limit by at most one event's growth per loop (a read; for a compressed
// WebSocket message, what one read inflates to, itself bounded by max_message). Connections at
// or above the average are the ones that cost the most; a small one that happens to tip the
// total over is spared in favour of its thread's largest (an attacker's many stalled heads are
// the large holders, and a legitimate client's small request that arrives meanwhile goes
// through).
//
// Thread affinity: a holder is updated on its connection's thread only; the counters are
// atomics (relaxed: a statistic and a bound, not a synchronisation).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "nbio/engine/conn.hpp"

namespace nbio::http::detail {

// What one endpoint's connections share (an http::server's, a websocket::server's).
struct buffer_budget {
  std::uint64_t limit = 0;  // 0: unlimited (still counted)
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> holders{0};  // connections holding more than 0 bytes
  std::atomic<std::uint64_t> evictions{0};
};

class holder_set;

// One connection's share of a budget. Default-constructed holding nothing; the destructor gives
// back what it holds.
class budget_holder {
 public:
  budget_holder() noexcept = default;
  budget_holder(const budget_holder&) = delete;
  budget_holder& operator=(const budget_holder&) = delete;
  ~budget_holder() { release(); }

  // Records that connection `c` now holds `bytes` of budget `b` (the same c and b every call).
  // Returns the connection to evict when the total is over the limit after this one grew: `c`
  // itself or another connection of this thread and budget (counted in b.evictions); nullptr
  // otherwise. The caller evicts it and calls update(0) (or destroys the holder) for it.
  nbio::conn* update(buffer_budget& b, nbio::conn& c, std::size_t bytes) noexcept;
  void release() noexcept;
  std::size_t held() const noexcept { return held_; }

 private:
  friend class holder_set;
  buffer_budget* budget_ = nullptr;
  nbio::conn* conn_ = nullptr;
  holder_set* set_ = nullptr;
  budget_holder* prev_ = nullptr;
  budget_holder* next_ = nullptr;
  std::size_t held_ = 0;
  std::uint8_t list_ = 0;  // which of the set's lists (by power of two of held_)
};

// The heap bytes of a string (its capacity once it left the small-string buffer): what a
// holder counts, since that is what the allocator holds, not size().
inline std::size_t heap_bytes(const std::string& s) noexcept {
  return s.capacity() > std::string().capacity() ? s.capacity() : 0;
}

}  // namespace nbio::http::detail
