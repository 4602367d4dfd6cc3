// Private. The engine: setup of listeners, dialers and UDP sockets, start, stop, shutdown.
#include "nbio/engine/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "engine/backend/uring.hpp"
#include "engine/engine_impl.hpp"
#include "engine/sibling_ports.hpp"
#include "sys/socket.hpp"

namespace nbio {

upgrade_target::upgrade_target(detail::handler_table* cls) noexcept : cls_(cls) {}
upgrade_target::~upgrade_target() = default;

engine::engine(engine_options config)
    : impl_(std::make_unique<detail::engine_impl>(*this, config)) {}
engine::~engine() {
  impl_->stop();
}

namespace {

// A slot lives in a 64 KiB chunk of slots: state larger than max_slot_data belongs on the heap,
// with a pointer to it in conn_data.
void check_slot(const detail::handler_table* cls, std::string_view where) {
  const std::size_t need = cls->slot_bytes();
  if (need <= max_slot_data) return;
  delete cls;
  throw std::invalid_argument("nbio::engine::" + std::string(where) + ": conn_data or " +
                              "reserve_data of " + std::to_string(need) + " bytes, past " +
                              "max_slot_data (" + std::to_string(max_slot_data) + ")");
}

}  // namespace

listener& engine::listen_table(std::string_view addr, detail::handler_table* cls,
                               const listen_options& options) {
  check_slot(cls, "listen");
  cls->tls = options.tls;
  return impl_->listen(addr, std::unique_ptr<detail::handler_table>(cls), options);
}
dialer& engine::make_dialer_table(detail::handler_table* cls, const dial_options& options) {
  check_slot(cls, "make_dialer");
  cls->tls = options.tls;
  return impl_->make_dialer(std::unique_ptr<detail::handler_table>(cls), options);
}
upgrade_target& engine::make_upgrade_target_table(detail::handler_table* cls) {
  check_slot(cls, "make_upgrade_target");
  return impl_->make_upgrade_target(std::unique_ptr<detail::handler_table>(cls));
}
udp_socket& engine::udp_bind_table(std::string_view addr, detail::udp_handler_table* cls,
                                   std::size_t loop) {
  return impl_->udp_bind(addr, std::unique_ptr<detail::udp_handler_table>(cls), loop);
}
address engine::udp_listen_table(std::string_view addr, detail::udp_handler_table* cls) {
  return impl_->udp_listen(addr, std::unique_ptr<detail::udp_handler_table>(cls));
}
void engine::start() {
  impl_->start();
}
void engine::wait() {
  impl_->wait();
}
void engine::run() {
  impl_->start();
  impl_->wait();
}
void engine::stop() {
  impl_->stop();
}
bool engine::shutdown(std::chrono::milliseconds deadline) {
  return impl_->shutdown(deadline);
}
bool engine::running() const noexcept {
  return impl_->running();
}
engine_stats engine::stats() const {
  return impl_->stats();
}
std::size_t engine::loop_count() const noexcept {
  return impl_->loop_count();
}
loop& engine::loop_at(std::size_t index) noexcept {
  return impl_->loop_at(index);
}
const engine_options& engine::options() const noexcept {
  return impl_->options();
}

namespace detail {

thread_local const engine_impl* this_thread_engine = nullptr;

static std::system_error setup_error(std::error_code ec, std::string_view what,
                                     std::string_view addr) {
  return std::system_error(ec, "nbio: " + std::string(what) + " '" + std::string(addr) + "'");
}

static address parse_or_throw(std::string_view addr, std::string_view what) {
  auto parsed = address::parse(addr);
  if (!parsed) throw setup_error(std::make_error_code(std::errc::invalid_argument), what, addr);
  return *parsed;
}

// NBIO_BACKEND overrides the configured back-end; automatic becomes io_uring or epoll here, once
// per engine, and an io_uring that cannot run is a setup error (thrown, with the reason).
io_backend engine_impl::choose_backend(io_backend wanted) {
  if (const char* env = std::getenv("NBIO_BACKEND"); env && *env) {
    const std::string_view v(env);
    if (v == "epoll")
      wanted = io_backend::epoll;
    else if (v == "io_uring")
      wanted = io_backend::io_uring;
    else if (v == "auto")
      wanted = io_backend::automatic;
    else
      throw std::invalid_argument("NBIO_BACKEND: '" + std::string(v) +
                                  "' is not epoll, io_uring or auto");
  }
  if (wanted == io_backend::epoll) return wanted;
  std::string why;
  const std::error_code ec = uring::probe(why);
  if (wanted == io_backend::io_uring) {
    if (ec) throw std::system_error(ec, "nbio: the io_uring back-end cannot start: " + why);
    return wanted;
  }
  if (ec) {
    std::fprintf(stderr, "nbio: back-end epoll (auto: %s)\n", why.c_str());
    return io_backend::epoll;
  }
  std::fprintf(stderr, "nbio: back-end io_uring (auto)\n");
  return io_backend::io_uring;
}

engine_impl::engine_impl(nbio::engine& facade, engine_options config)
    : facade_(facade),
      config_(config),
      epoch_(std::chrono::steady_clock::now()),
      // Free blocks kept for any loop: up to the write budget (what the queues may hold at
      // once anyway), or 256 MiB when the budget is off.
      depot_(config.max_write_queue_total ? config.max_write_queue_total : std::size_t{256} << 20) {
  if (config_.loops == 0) config_.loops = std::max(1u, std::thread::hardware_concurrency());
  config_.backend = choose_backend(config_.backend);
  if (config_.read_buffer_size < 1024) config_.read_buffer_size = 1024;
  if (config_.reads_per_turn == 0) config_.reads_per_turn = 1;
  if (config_.events_per_wait == 0) config_.events_per_wait = 1;
  if (config_.accepts_per_turn == 0) config_.accepts_per_turn = 1;
  if (config_.uring_entries < 8) config_.uring_entries = 8;
  if (config_.uring_entries > 32768) config_.uring_entries = 32768;
  if (config_.uring_buffers == 0) config_.uring_buffers = 1;
  if (config_.uring_buffer_size < 1024) config_.uring_buffer_size = 1024;
  if (config_.uring_buffer_size > (1u << 20)) config_.uring_buffer_size = 1u << 20;
  for (unsigned i = 0; i < config_.loops; ++i)
    loops_.push_back(std::make_unique<loop_impl>(*this, i));
}

engine_impl::~engine_impl() {
  stop();
  resolver_.stop();  // its callbacks post to the loops
  udps_.clear();     // their peers' timers live in the loops' wheels
  loops_.clear();    // before the listeners whose sockets the loops point at
}

std::uint32_t engine_impl::clock_ms() const noexcept {
  auto d = std::chrono::steady_clock::now() - epoch_;
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

listener& engine_impl::listen(std::string_view addr, std::unique_ptr<handler_table> cls,
                              const listen_options& options) {
  address bound = parse_or_throw(addr, "cannot listen on");
  bool per_loop = options.accept == accept_strategy::reuseport && !bound.is_unix();
  const bool checked = !options.join_existing && !bound.is_unix() && bound.port() != 0;
  // In a run_workers worker, the siblings' listens on this address are ordered by the
  // supervisor's table: the first one checks and records it, the others join it.
  sibling_ports* siblings = checked ? sibling_ports::current() : nullptr;
  if (siblings) siblings->lock();
  struct unlock_siblings {
    sibling_ports* s;
    ~unlock_siblings() {
      if (s) s->unlock();
    }
  } unlock_at_exit{siblings};
  const address requested = bound;
  const bool join = options.join_existing || (siblings && siblings->contains(requested));
  // SO_REUSEPORT lets the loops' sockets share the port, and would let them join any other
  // process's listener there just as silently. So, unless asked to join, a plain bind first
  // (sys::probe_listen) fails with EADDRINUSE as nginx's would. Between the probe and the
  // listen() below, a server started at the same instant could pass the same probe: the check
  // is against servers already running, which is the mistake it is for. Port 0 needs none:
  // the kernel picks a port no listener holds.
  if (checked && !join) {
    if (auto ec = sys::probe_listen(bound)) {
      if (siblings) siblings->mark_refused();
      throw setup_error(ec, "cannot listen on", addr);
    }
  }
  const bool reuseport = !bound.is_unix() && (per_loop || join);
  std::size_t sockets = per_loop ? loops_.size() : 1;
  std::vector<int> fds;
  for (std::size_t i = 0; i < sockets; ++i) {
    std::error_code ec;
    int fd = sys::open_listener(bound, reuseport, options.backlog, ec);
    if (fd < 0) {
      for (int f : fds)
        sys::close(f);
      throw setup_error(ec, "cannot listen on", addr);
    }
    // Port 0: the first socket's port is the one the others share.
    if (i == 0 && !bound.is_unix()) bound = sys::local_address(fd);
    fds.push_back(fd);
  }
  if (siblings && !join) siblings->add(requested);
  auto l = std::make_unique<listener_impl>(bound, std::move(cls), options);
  l->cls_owner(l.get());
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto ls = std::make_unique<listen_socket>();
    ls->fd = fds[i];
    ls->owner = l.get();
    ls->loop = loops_[i].get();
    l->sockets.push_back(std::move(ls));
  }
  std::lock_guard lock(mu_);
  for (auto& ls : l->sockets)
    ls->loop->add_listen_socket(ls.get());
  return *listeners_.emplace_back(std::move(l));
}

dialer& engine_impl::make_dialer(std::unique_ptr<handler_table> cls, const dial_options& options) {
  std::lock_guard lock(mu_);
  return *dialers_.emplace_back(std::make_unique<dialer_impl>(*this, std::move(cls), options));
}

upgrade_target& engine_impl::make_upgrade_target(std::unique_ptr<handler_table> cls) {
  std::lock_guard lock(mu_);
  return *targets_.emplace_back(std::make_unique<upgrade_target>(cls.release()));
}

udp_socket& engine_impl::udp_bind(std::string_view addr, std::unique_ptr<udp_handler_table> cls,
                                  std::size_t loop) {
  address a = parse_or_throw(addr, "cannot bind UDP");
  std::error_code ec;
  int fd = sys::open_udp(a, false, ec);
  if (fd < 0) throw setup_error(ec, "cannot bind UDP", addr);
  std::shared_ptr<udp_handler_table> shared(std::move(cls));
  loop_impl& l = *loops_[loop % loops_.size()];
  std::lock_guard lock(mu_);
  auto& u = udps_.emplace_back(
      std::make_unique<udp_impl>(l, fd, sys::local_address(fd), std::move(shared), false));
  l.add_udp(u.get());
  return *u;
}

address engine_impl::udp_listen(std::string_view addr, std::unique_ptr<udp_handler_table> cls) {
  address a = parse_or_throw(addr, "cannot bind UDP");
  std::shared_ptr<udp_handler_table> shared(std::move(cls));
  std::vector<int> fds;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    std::error_code ec;
    int fd = sys::open_udp(a, true, ec);
    if (fd < 0) {
      for (int f : fds)
        sys::close(f);
      throw setup_error(ec, "cannot bind UDP", addr);
    }
    if (i == 0) a = sys::local_address(fd);
    fds.push_back(fd);
  }
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto& u = udps_.emplace_back(std::make_unique<udp_impl>(*loops_[i], fds[i], a, shared, true));
    loops_[i]->add_udp(u.get());
  }
  return a;
}

void engine_impl::start() {
  std::lock_guard lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (auto& l : loops_)
    l->start_thread();
}

bool engine_impl::running() const noexcept {
  std::lock_guard lock(mu_);
  return started_ && !stopped_;
}

void engine_impl::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return stopped_ || stop_requested_; });
  lock.unlock();
  stop();
}

void engine_impl::stop() {
  if (this_thread_engine == this) {
    // From a handler: ask, and let wait() (or the destructor) join.
    for (auto& l : loops_)
      l->request_stop();
    std::lock_guard lock(mu_);
    stop_requested_ = true;
    cv_.notify_all();
    return;
  }
  {
    // One caller joins; a concurrent one waits until the joining is done.
    std::unique_lock lock(mu_);
    if (joining_) {
      cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    if (stopped_) return;
    joining_ = true;
  }
  for (auto& l : loops_)
    l->request_stop();
  for (auto& l : loops_)
    l->join();
  std::lock_guard lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

bool engine_impl::shutdown(std::chrono::milliseconds deadline) {
  if (this_thread_engine == this)
    throw std::logic_error("nbio: engine::shutdown() from a handler would wait on itself");
  if (!running()) {
    stop();
    return true;
  }
  for (auto& l : loops_)
    l->request_drain();
  auto until = std::chrono::steady_clock::now() + deadline;
  bool finished = false;
  while (std::chrono::steady_clock::now() < until) {
    if (stats().total.online == 0) {
      finished = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop();
  return finished;
}

engine_stats engine_impl::stats() const {
  engine_stats s;
  for (auto& l : loops_) {
    s.loops.push_back(l->stats());
    s.total += s.loops.back();
  }
  s.write_queued = write_queued_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace detail
}  // namespace nbio
