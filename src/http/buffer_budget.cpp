// Private. The buffer budget's per-thread holder lists and the eviction choice.
#include "http/buffer_budget.hpp"

#include <bit>
#include <memory>
#include <vector>

namespace nbio::http::detail {

// A thread's holders of one budget, in 64 lists by the power of two of what they hold.
class holder_set {
 public:
  const buffer_budget* budget = nullptr;
  std::size_t count = 0;

  static std::uint8_t list_of(std::size_t bytes) noexcept {
    return static_cast<std::uint8_t>(std::bit_width(bytes) - 1);  // bytes > 0
  }
  void insert(budget_holder& h) noexcept {
    h.list_ = list_of(h.held_);
    h.prev_ = nullptr;
    h.next_ = heads_[h.list_];
    if (h.next_) h.next_->prev_ = &h;
    heads_[h.list_] = &h;
    used_ |= std::uint64_t{1} << h.list_;
    ++count;
  }
  void erase(budget_holder& h) noexcept {
    if (h.prev_)
      h.prev_->next_ = h.next_;
    else
      heads_[h.list_] = h.next_;
    if (h.next_) h.next_->prev_ = h.prev_;
    if (!heads_[h.list_]) used_ &= ~(std::uint64_t{1} << h.list_);
    h.prev_ = h.next_ = nullptr;
    --count;
  }
  // The highest list in use: its first holder holds at least half of this thread's largest.
  int top_list() const noexcept { return used_ ? 63 - std::countl_zero(used_) : -1; }
  budget_holder* first_of(int list) const noexcept {
    return heads_[static_cast<std::size_t>(list)];
  }

 private:
  std::array<budget_holder*, 64> heads_{};
  std::uint64_t used_ = 0;
};

namespace {

// The calling thread's set for `b`. A thread serves few endpoints (usually one): a short
// vector, searched once per holder (the holder keeps its set). Sets left empty by an endpoint
// that is gone are reused.
holder_set& set_for(const buffer_budget& b) {
  thread_local std::vector<std::unique_ptr<holder_set>> sets;
  holder_set* spare = nullptr;
  for (auto& s : sets) {
    if (s->budget == &b) return *s;
    if (s->count == 0 && !spare) spare = s.get();
  }
  if (!spare) spare = sets.emplace_back(std::make_unique<holder_set>()).get();
  spare->budget = &b;
  return *spare;
}

}  // namespace

nbio::conn* budget_holder::update(buffer_budget& b, nbio::conn& c, std::size_t bytes) noexcept {
  const std::size_t before = held_;
  if (bytes == before) return nullptr;
  budget_ = &b;
  conn_ = &c;
  std::uint64_t total = 0;
  if (bytes > before) {
    total = b.held.fetch_add(bytes - before, std::memory_order_relaxed) + (bytes - before);
  } else {
    total = b.held.fetch_sub(before - bytes, std::memory_order_relaxed) - (before - bytes);
  }
  if (before == 0) {
    if (!set_ || set_->budget != &b) set_ = &set_for(b);
    b.holders.fetch_add(1, std::memory_order_relaxed);
    held_ = bytes;
    set_->insert(*this);
  } else if (bytes == 0) {
    set_->erase(*this);
    b.holders.fetch_sub(1, std::memory_order_relaxed);
    held_ = 0;
    return nullptr;
  } else {
    held_ = bytes;
    if (holder_set::list_of(bytes) != list_) {
      set_->erase(*this);
      set_->insert(*this);
    }
  }
  if (bytes < before || b.limit == 0 || total <= b.limit) return nullptr;
  // Holders that are closing already (a read timeout, a reset: their buffers go when the loop
  // reaps them at the end of this turn) leave the budget now rather than be chosen: evicting
  // one would free nothing the reap does not, and spare the connection that grew.
  int top = set_->top_list();
  while (top > list_ && !set_->first_of(top)->conn_->is_open()) {
    set_->first_of(top)->release();
    top = set_->top_list();
  }
  total = b.held.load(std::memory_order_relaxed);
  if (total <= b.limit) return nullptr;
  // Over the limit, and this one grew: see the header for the choice.
  const std::uint64_t holders = b.holders.load(std::memory_order_relaxed);
  const std::uint64_t average = total / (holders ? holders : 1);
  nbio::conn* victim = conn_;
  if (held_ < average && top > list_) victim = set_->first_of(top)->conn_;
  b.evictions.fetch_add(1, std::memory_order_relaxed);
  return victim;
}

void budget_holder::release() noexcept {
  if (held_ == 0) return;
  budget_->held.fetch_sub(held_, std::memory_order_relaxed);
  budget_->holders.fetch_sub(1, std::memory_order_relaxed);
  set_->erase(*this);
  held_ = 0;
}

}  // namespace nbio::http::detail
