// Private. The event loop: its turn, its task queue, its timers and its listeners.
// The connection state machine it drives is in the conn_*.cpp files (conn_core.hpp lists them);
// the io_uring back-end's turn is in loop_uring.cpp.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "engine/blocking_runner.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_conn.hpp"
#include "sys/socket.hpp"

namespace nbio {

// The public loop API forwards to the implementation (the facade has no state of its own).
void loop::post(std::function<void()> fn) {
  detail::loop_impl::of(*this).post(std::move(fn));
}
bool loop::in_loop_thread() const noexcept {
  return static_cast<const detail::loop_impl*>(this)->in_loop_thread();
}
std::size_t loop::index() const noexcept {
  return static_cast<const detail::loop_impl*>(this)->index();
}
engine& loop::owner() const noexcept {
  return static_cast<const detail::loop_impl*>(this)->engine().facade();
}
loop_stats loop::stats() const noexcept {
  return static_cast<const detail::loop_impl*>(this)->stats();
}
timer_id loop::add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
  return detail::loop_impl::of(*this).add_timer(timer_wheel::clamp_delay(delay.count()), 0,
                                                std::move(fn));
}
timer_id loop::add_repeating_timer(std::chrono::milliseconds interval, std::function<void()> fn) {
  std::uint32_t ms = std::max(1u, timer_wheel::clamp_delay(interval.count()));
  return detail::loop_impl::of(*this).add_timer(ms, ms, std::move(fn));
}
bool loop::cancel_timer(timer_id id) {
  return detail::loop_impl::of(*this).cancel_timer(id);
}
std::uint32_t loop::now_ms() const noexcept {
  return static_cast<const detail::loop_impl*>(this)->now();
}

loop_stats& loop_stats::operator+=(const loop_stats& o) noexcept {
  online += o.online;
  accepted += o.accepted;
  dialed += o.dialed;
  closed += o.closed;
  refused += o.refused;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  write_budget_closes += o.write_budget_closes;
  return *this;
}

namespace detail {

static void* tagged(const void* p, std::uintptr_t tag) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) | tag);
}

loop_impl::loop_impl(engine_impl& eng, std::size_t index)
    : eng_(eng),
      index_(index),
      wheel_(eng.clock_ms()),
      now_(eng.clock_ms()),
      rbuf_(new char[eng.options().read_buffer_size]),
      rbuf_size_(eng.options().read_buffer_size),
      events_(eng.options().events_per_wait),
      writes_(eng.write_queued(), eng.options().max_write_queue_total, eng.depot()) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  const engine_options& cfg = eng.options();
  if (cfg.backend == io_backend::io_uring) {
    ring_ = std::make_unique<uring>(uring::options{cfg.uring_entries, cfg.uring_buffers,
                                                   static_cast<unsigned>(cfg.uring_buffer_size)});
    // One msghdr and up to 64 iovecs for each send of several blocks until the batch is
    // submitted (the kernel copies them at submission).
    msgs_.reset(new msghdr[uring_msgs]);
    iovs_.reset(new iovec[uring_msgs * uring_iov]);
    send_list_.reserve(256);
    send_swap_.reserve(256);
  } else {
    edge_ = cfg.trigger == trigger_mode::edge;
    if (auto ec = poller_.add(wake_fd_, poll_read, false, tagged(nullptr, tag_wake)))
      throw std::system_error(ec, "epoll_ctl(eventfd)");
  }
  ready_.reserve(256);
  ready_swap_.reserve(256);
  closing_.reserve(256);
}

loop_impl::~loop_impl() {
  join();
  // Connections left when the loop never ran (engine destroyed without start()).
  for (auto& pool : pools_) {
    pool->for_each_live([this](conn& c) {
      if (c.cls_ && c.cls_->destroy_data)
        c.cls_->destroy_data(reinterpret_cast<char*>(&c) + sizeof(conn));
      if ((c.flags_ & conn::f_connecting) && c.ds_)
        delete c.ds_;
      else if (!(c.flags_ & conn::f_blocking) && c.wq_)
        writes_.release(c.wq_);
      sys::close(c.fd_);
      c.fd_ = -1;
    });
  }
  sys::close(wake_fd_);
}

void loop_impl::start_thread() {
  thread_ = std::thread([this] { run(); });
}

void loop_impl::join() {
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

void loop_impl::request_stop() {
  if (stop_requested_.exchange(true)) return;
  post([this] { stop_everything(); });
}

void loop_impl::request_drain() {
  if (drain_requested_.exchange(true)) return;
  post([this] { drain_everything(); });
}

void loop_impl::update_clock() noexcept {
  now_ = eng_.clock_ms();
}

loop_stats loop_impl::stats() const noexcept {
  loop_stats s;
  s.online = online_.get();
  s.accepted = accepted_.get();
  s.dialed = dialed_.get();
  s.closed = closed_.get();
  s.refused = refused_.get();
  s.write_budget_closes = budget_closes_.get();
  s.bytes_in = bytes_in_.get() + blocking_in_.load(std::memory_order_relaxed);
  s.bytes_out = bytes_out_.get() + blocking_out_.load(std::memory_order_relaxed);
  return s;
}

// --- the turn -------------------------------------------------------------------------------

void loop_impl::run() {
  tid_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  this_thread_engine = &eng_;
  update_clock();
  if (ring_)
    run_uring();
  else
    run_epoll();
  tid_.store(std::thread::id{}, std::memory_order_relaxed);  // the loop is over: any thread may
}

void loop_impl::run_epoll() {
  for (;;) {
    int n = poller_.wait(events_.data(), static_cast<int>(events_.size()), wait_timeout());
    update_clock();
    handshake_budget_ = eng_.options().handshakes_per_turn;
    // I/O first, then timers (nginx's order): a loop that wakes late (a busy machine, a long
    // handler) must not time out a connect, read or idle deadline whose event is already in
    // this batch. Deadlines set while dispatching are absolute (now_ + delay), so the wheel's
    // clock lagging until the advance below places them correctly.
    for (int i = 0; i < n; ++i)
      dispatch(events_[i]);
    if (finish_turn()) break;
  }
  finish_run();
}

// The turn after I/O, the same for both back-ends: timers, deferred reads, posted tasks, the
// reap. True when a stopping loop has nothing left.
bool loop_impl::finish_turn() {
  wheel_.advance(now_, [this](timer_link& t) { on_timer(t); });
  run_ready();
  run_tasks();
  reap();
  return stopping_ && online_.get() == 0 && blocking_.empty() && closing_.empty();
}

// Tasks that came in the last turn: handed-out sockets get closed and dials get on_error (both
// see stopping_), instead of leaking with the queue.
void loop_impl::finish_run() {
  run_tasks();
  reap();
}

int loop_impl::wait_timeout() const noexcept {
  if (!ready_.empty() || !closing_.empty() || !send_list_.empty()) return 0;
  std::int64_t t = wheel_.next_timeout();
  if (t < 0) return -1;
  return static_cast<int>(std::min<std::int64_t>(t, 60'000));
}

void loop_impl::dispatch(const poll_event& ev) {
  auto p = reinterpret_cast<std::uintptr_t>(ev.data);
  switch (p & tag_mask) {
    case tag_conn:
      on_conn_event(*reinterpret_cast<conn*>(p), ev.flags);
      break;
    case tag_listen:
      on_accept(*reinterpret_cast<listen_socket*>(p & ~std::uintptr_t{tag_mask}));
      break;
    case tag_wake:
      on_wake();
      break;
    case tag_udp:
      reinterpret_cast<udp_impl*>(p & ~std::uintptr_t{tag_mask})->on_readable();
      break;
  }
}

void loop_impl::run_ready() {
  if (ready_.empty()) return;
  ready_swap_.swap(ready_);
  for (conn* c : ready_swap_) {
    if (!(c->flags_ & conn::f_in_ready_list)) continue;  // reaped since it was listed
    c->flags_ &= static_cast<std::uint16_t>(~conn::f_in_ready_list);
    if (c->is_open() && (c->flags_ & conn::f_read_ready)) do_read(*c);
  }
  ready_swap_.clear();
}

// --- tasks ----------------------------------------------------------------------------------

void loop_impl::post(std::function<void()> fn) {
  std::lock_guard lock(task_mu_);
  bool first = tasks_.empty();
  tasks_.push_back(std::move(fn));
  // One eventfd write per batch: later posts find the queue non-empty and the loop awake. It is
  // made under the lock: once the task is visible, the loop may run it, finish and be destroyed
  // (a blocking-mode thread's last post), so nothing may touch the loop after the unlock.
  if (first) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof(one));
  }
}

void loop_impl::on_wake() {
  std::uint64_t value;
  [[maybe_unused]] auto r = ::read(wake_fd_, &value, sizeof(value));
}

void loop_impl::run_tasks() {
  {
    std::lock_guard lock(task_mu_);
    if (tasks_.empty()) return;
    running_.swap(tasks_);
  }
  for (auto& fn : running_)
    fn();
  running_.clear();
}

// --- timers ---------------------------------------------------------------------------------

timer_id loop_impl::add_timer(std::uint32_t delay, std::uint32_t interval,
                              std::function<void()> fn) {
  assert(!running() || in_loop_thread());
  std::uint32_t index;
  if (!free_timers_.empty()) {
    index = free_timers_.back();
    free_timers_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(timers_.size());
    timers_.emplace_back().index = index;
  }
  user_timer& t = timers_[index];
  t.link.tag = timer_user;
  t.link.owner_u16 = 0;
  t.fn = std::move(fn);
  t.interval = interval;
  t.in_use = true;
  wheel_.schedule(t.link, now_ + delay);
  return {index, t.gen};
}

bool loop_impl::cancel_timer(timer_id id) {
  assert(!running() || in_loop_thread());
  if (id.index >= timers_.size()) return false;
  user_timer& t = timers_[id.index];
  if (!t.in_use || t.gen != id.gen) return false;
  wheel_.cancel(t.link);
  t.in_use = false;
  ++t.gen;
  t.fn = nullptr;
  free_timers_.push_back(id.index);
  return true;
}

void loop_impl::on_timer(timer_link& link) {
  switch (link.tag) {
    case timer_conn:
      on_conn_timer(*reinterpret_cast<conn*>(&link));
      return;
    case timer_udp_peer: {
      auto& peer = *reinterpret_cast<udp_peer*>(&link);
      udp_impl::of(peer.socket()).on_peer_timer(peer);
      return;
    }
    case timer_user:
      break;
  }
  auto* t = reinterpret_cast<user_timer*>(&link);
  std::uint32_t index = t->index;
  std::uint32_t gen = t->gen;
  // Move the callback out: it may cancel its own timer, which resets t->fn.
  std::function<void()> fn = std::move(t->fn);
  if (!t->interval) {
    t->in_use = false;
    ++t->gen;
    free_timers_.push_back(index);
    fn();
    return;
  }
  fn();
  user_timer& again = timers_[index];
  if (again.in_use && again.gen == gen) {
    again.fn = std::move(fn);
    wheel_.schedule(again.link, now_ + again.interval);
  }
}

// --- listeners ------------------------------------------------------------------------------

// io_uring: the loop thread arms the accept (the ring takes submissions from it alone), when
// it starts or, for a listener added while it runs, in a task.
void loop_impl::add_listen_socket(listen_socket* ls) {
  if (!ring_) {
    if (auto ec = poller_.add(ls->fd, poll_read, false, tagged(ls, tag_listen)))
      throw std::system_error(ec, "epoll_ctl(listener)");
  }
  if (thread_.joinable())
    post([this, ls] {
      listen_sockets_.push_back(ls);
      if (ring_) arm_accept(*ls);
    });
  else
    listen_sockets_.push_back(ls);
}

void loop_impl::add_udp(udp_impl* u) {
  if (!ring_) {
    if (auto ec = poller_.add(u->fd(), poll_read, false, tagged(u, tag_udp)))
      throw std::system_error(ec, "epoll_ctl(udp)");
  }
  if (thread_.joinable())
    post([this, u] {
      udps_.push_back(u);
      if (ring_) arm_udp(*u);
    });
  else
    udps_.push_back(u);
}

void loop_impl::close_listen_socket(listen_socket* ls) {
  if (ls->fd < 0) return;
  if (ring_) {
    // The accept in flight holds the socket open until the cancellation is submitted.
    ring_->cancel(uring_data(ls, op_accept));
  } else if (!ls->paused) {
    poller_.remove(ls->fd);
  }
  sys::close(ls->fd);
  ls->fd = -1;
}

// A paused listener rejoins the poller after accept_retry. When that registration fails too
// (ENOMEM, ENOSPC: the same shortage that paused it), it tries again after another accept_retry
// rather than stay out of the poller, and so deaf, for good. EEXIST means the pause's removal
// had failed and the socket never left: it is registered, which is all the resume wants.
void loop_impl::resume_accepting_later(listen_socket& ls) {
  add_timer(timer_wheel::clamp_delay(eng_.options().accept_retry.count()), 0, [this, &ls] {
    if (ls.fd < 0 || !ls.paused) return;
    if (ring_) {
      ls.paused = false;
      arm_accept(ls);
      return;
    }
    const std::error_code ec = poller_.add(ls.fd, poll_read, false, tagged(&ls, tag_listen));
    if (ec && ec != std::errc::file_exists) {
      resume_accepting_later(ls);
      return;
    }
    ls.paused = false;
  });
}

void loop_impl::on_accept(listen_socket& ls) {
  if (ls.fd < 0 || ls.paused) return;
  const unsigned budget = eng_.options().accepts_per_turn;
  for (unsigned i = 0; i < budget; ++i) {
    std::error_code ec;
    int fd = sys::accept(ls.fd, ec);
    if (fd < 0) {
      if (sys::would_block(ec)) return;
      if (ec == std::errc::interrupted || ec == std::errc::connection_aborted ||
          ec == std::errc::protocol_error)
        continue;
      if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
          ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory) {
        // Out of descriptors: the pending connection stays in the backlog and epoll would
        // report it again at once. Leave the poller and retry on a timer instead of spinning;
        // the backlog is served when descriptors free up.
        poller_.remove(ls.fd);
        ls.paused = true;
        resume_accepting_later(ls);
      }
      return;
    }
    accept_one(ls, fd);
  }
}

// An accepted socket: refused past the listener's cap, handed to another loop (acceptor
// strategy) or adopted here. Both back-ends.
void loop_impl::accept_one(listen_socket& ls, int fd) {
  listener_impl& l = *ls.owner;
  if (l.over_cap()) {
    refused_.add(1);
    sys::close(fd);
    return;
  }
  l.opened();
  std::size_t loops = eng_.loop_count();
  if (l.options().accept == accept_strategy::acceptor && loops > 1) {
    loop_impl& target = eng_.loop_at(l.next_loop(loops));
    if (&target != this) {
      target.post([&target, fd, &l] { target.adopt(fd, l.cls(), &l); });
      return;
    }
  }
  adopt(fd, l.cls(), &l);
}

// --- stop and graceful shutdown -------------------------------------------------------------

void loop_impl::stop_everything() {
  stopping_ = true;
  for (listen_socket* ls : listen_sockets_)
    close_listen_socket(ls);
  for (udp_impl* u : udps_)
    u->close_all();
  for (conn* c : blocking_)
    blocking_runner::request_stop(*c);
  for (auto& pool : pools_) {
    pool->for_each_live([this](conn& c) {
      if (!blocking_.contains(&c)) close(c, errc::shutdown);
    });
  }
}

void loop_impl::drain_everything() {
  draining_ = true;
  for (listen_socket* ls : listen_sockets_)
    close_listen_socket(ls);
  for (conn* c : blocking_)
    blocking_runner::request_drain(*c);
  for (auto& pool : pools_) {
    pool->for_each_live([this](conn& c) {
      if (blocking_.contains(&c) || !c.is_open()) return;
      finish_for_shutdown(c);
    });
  }
}

void loop_impl::finish_for_shutdown(conn& c) {
  if ((c.flags_ & conn::f_connecting) || !(c.flags_ & conn::f_opened))  // dialing, handshaking
    close(c, errc::shutdown);
  else if (c.cls_->on_shutdown)
    c.cls_->on_shutdown(c.cls_->handler, c);
  else {
    if (c.has_transport()) transport_conn::close_notify(c, false);  // after what is queued
    close_after_flush(c, errc::shutdown);
  }
}

}  // namespace detail
}  // namespace nbio
