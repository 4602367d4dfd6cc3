// Private. Blocking mode: the connection's thread.
#include "engine/blocking_runner.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <alloca.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "engine/blocking_state.hpp"
#include "engine/conn_core.hpp"
#include "engine/engine_impl.hpp"
#include "engine/transport_conn.hpp"
#include "sys/socket.hpp"

namespace nbio::detail {

bool blocking_runner::start(loop_impl& loop, conn& c) {
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) return false;
  auto* bs = new blocking_state;
  bs->wake_fd = wake;
  bs->owner = static_cast<listener_impl*>(c.cls_->owner);
  bs->max_queue = c.cls_->opts.max_write_queue;
  bs->reject = c.cls_->opts.on_overflow == overflow_policy::reject;
  c.bs_ = bs;
  c.flags_ |= conn::f_blocking;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  std::size_t stack =
      std::max<std::size_t>(PTHREAD_STACK_MIN, loop.engine().options().blocking_stack_size);
  pthread_attr_setstacksize(&attr, stack);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, &blocking_runner::thread_main, &c);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    ::close(wake);
    delete bs;
    c.bs_ = nullptr;
    c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_blocking);
    return false;
  }
  return true;
}

void* blocking_runner::thread_main(void* arg) {
  run(*static_cast<conn*>(arg));
  return nullptr;
}

void blocking_runner::wake(conn& c) {
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(c.bs_->wake_fd, &one, sizeof(one));
}

void blocking_runner::request_stop(conn& c) {
  blocking_state& bs = *c.bs_;
  {
    std::lock_guard lock(bs.mu);
    bs.stop = true;
    // Wakes a thread blocked in a write to a peer that does not read.
    if (!bs.fd_closed) ::shutdown(c.fd_, SHUT_RDWR);
  }
  wake(c);
}

void blocking_runner::request_drain(conn& c) {
  c.bs_->drain = true;
  wake(c);
}

void blocking_runner::request_overflow_close(conn& c) {
  blocking_state& bs = *c.bs_;
  {
    std::lock_guard lock(bs.mu);
    bs.overflow = true;
    // The thread is likely blocked writing to a peer that does not read: wake it.
    if (!bs.fd_closed) ::shutdown(c.fd_, SHUT_RDWR);
  }
  wake(c);
}

void blocking_runner::hand_over(conn& c, std::function<void(conn&)> fn) {
  {
    std::lock_guard lock(c.bs_->mu);
    c.bs_->tasks.push_back(std::move(fn));
  }
  wake(c);
}

bool blocking_runner::run_tasks(conn& c) {
  std::vector<std::function<void(conn&)>> tasks;
  {
    std::lock_guard lock(c.bs_->mu);
    tasks.swap(c.bs_->tasks);
  }
  for (auto& fn : tasks) {
    if (!c.is_open()) break;
    fn(c);
  }
  return c.is_open();
}

int blocking_runner::poll_timeout(conn& c, std::uint32_t now) {
  std::int64_t best = -1;
  auto consider = [&](std::uint32_t deadline) {
    std::int64_t left = std::max<std::int32_t>(0, static_cast<std::int32_t>(deadline - now));
    if (best < 0 || left < best) best = left;
  };
  if (c.flags_ & conn::f_read_deadline) consider(c.read_deadline_);
  if (c.cls_->idle_timeout_ms) consider(c.last_active_ + c.cls_->idle_timeout_ms);
  return static_cast<int>(std::min<std::int64_t>(best, INT_MAX));
}

bool blocking_runner::check_deadlines(conn& c, std::uint32_t now) {
  if ((c.flags_ & conn::f_read_deadline) && due(c.read_deadline_, now)) {
    if (auto ec = conn_core::read_deadline_passed(c)) close(c, ec);
  } else if (c.cls_->idle_timeout_ms && due(c.last_active_ + c.cls_->idle_timeout_ms, now)) {
    close(c, conn_core::idle_passed(c));
  }
  return !c.is_open();
}

void blocking_runner::run(conn& c) {
  loop_impl& loop = loop_impl::of(c);
  engine_impl& eng = loop.engine();
  this_thread_engine = &eng;
  blocking_state& bs = *c.bs_;
  // The read buffer lives on the thread's own stack (a quarter of it at most): no malloc, so
  // no per-thread malloc arena, and only the pages a read fills cost memory. Measured at
  // 15,000 connections with 64 of them blocking: 15 KiB per blocking thread with a heap
  // buffer, docs/io_modes.md has the figure with this one.
  const std::size_t buf_size =
      std::min(eng.options().read_buffer_size, eng.options().blocking_stack_size / 4);
  char* buf = static_cast<char*>(alloca(buf_size));

  c.last_active_ = eng.clock_ms();
  if (c.cls_->read_timeout_ms) {
    c.read_deadline_ = c.last_active_ + c.cls_->read_timeout_ms;
    c.flags_ |= conn::f_read_deadline;
  }
  const bool tls = c.has_transport();
  if (tls) {
    // The handshake runs on this thread, as the reads come; on_open waits for it.
    std::error_code ec;
    transport_conn::slot(c).state = transport_hooks().open(*c.cls_->tls, c, true, {}, ec);
    if (ec) close(c, ec);
  } else {
    c.flags_ |= conn::f_opened;
    if (c.cls_->on_open) c.cls_->on_open(c.cls_->handler, c);
  }

  bool asked_to_finish = false;
  while (c.is_open()) {
    if (!run_tasks(c)) break;
    // Input a transport kept while the handler was paused, now that it reads again.
    if (tls && !(c.flags_ & (conn::f_read_paused | conn::f_eof)) && transport_conn::replay(c))
      continue;
    if (bs.stop) {
      close(c, errc::shutdown);
      break;
    }
    if (bs.drain && !asked_to_finish) {
      asked_to_finish = true;
      // Writes are direct, so nothing is ever queued: finishing means closing, unless the
      // handler wants to finish its work first.
      if (c.cls_->on_shutdown && (c.flags_ & conn::f_opened))
        c.cls_->on_shutdown(c.cls_->handler, c);
      else
        close(c, errc::shutdown);
      continue;
    }
    std::uint32_t now = eng.clock_ms();
    if (check_deadlines(c, now)) break;

    bool reading = !(c.flags_ & (conn::f_read_paused | conn::f_eof));
    pollfd pfd[2] = {{c.fd_, static_cast<short>(reading ? POLLIN : 0), 0}, {bs.wake_fd, POLLIN, 0}};
    int r = ::poll(pfd, 2, poll_timeout(c, now));
    if (r < 0) {
      if (errno == EINTR) continue;
      close(c, sys::last_error());
      break;
    }
    if (pfd[1].revents) {
      std::uint64_t value;
      [[maybe_unused]] auto n = ::read(bs.wake_fd, &value, sizeof(value));
    }
    // stop() shuts the socket down to wake us: report that, not the EOF it causes.
    if (bs.stop) {
      close(c, errc::shutdown);
      break;
    }
    short ev = pfd[0].revents;
    if ((ev & POLLHUP) && !reading) {
      // Both directions finished (or a reset) while not reading: report the socket's error,
      // or the end of the stream.
      std::error_code ec = sys::socket_error(c.fd_);
      close(c, ec ? ec : std::error_code(errc::eof));
      break;
    }
    if (!(ev & (POLLIN | POLLHUP | POLLERR))) continue;
    std::error_code ec;
    ssize_t n = sys::recv(c.fd_, buf, buf_size, ec);
    if (n > 0) {
      loop.blocking_bytes_in().fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      conn_core::received(c, {buf, static_cast<std::size_t>(n)}, eng.clock_ms());
    } else if (n == 0) {
      end_of_stream(c);
    } else if (!sys::would_block(ec)) {
      close(c, ec);
    }
  }

  if (c.cls_->on_close && (c.flags_ & conn::f_opened))
    c.cls_->on_close(c.cls_->handler, c, c.cause());
  if (tls) transport_conn::release(c, c.cause());
  if (c.cls_->destroy_data) c.cls_->destroy_data(reinterpret_cast<char*>(&c) + sizeof(conn));
  {
    std::lock_guard lock(bs.mu);
    ::close(c.fd_);
    bs.fd_closed = true;
  }
  // The last touch of the slot: from here on it is the loop's again.
  loop.post([&loop, &c] { loop.release_blocking(&c); });
}

void loop_impl::release_blocking(conn* c) {
  blocking_.erase(c);
  blocking_state* bs = c->bs_;
  listener_impl* owner = bs->owner;
  ::close(bs->wake_fd);
  delete bs;
  c->bs_ = nullptr;
  if (owner) {
    owner->release_blocking();
    if (c->flags_ & conn::f_listener_counted) owner->closed();
  }
  online_.sub(1);
  closed_.add(1);
  c->gen_.store(c->gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  conn_pool::pool_of(c).free(c);
}

// --- the connection's own thread ------------------------------------------------------------

std::error_code blocking_runner::write(conn& c, std::string_view data) {
  if (c.flags_ & (conn::f_closing | conn::f_write_shut)) return errc::not_connected;
  loop_impl& loop = loop_impl::of(c);
  engine_impl& eng = loop.engine();
  std::uint32_t start = eng.clock_ms();
  std::uint32_t deadline = 0;
  bool has_deadline = true;
  if (c.flags_ & conn::f_write_deadline)
    deadline = c.write_deadline_;
  else if (c.cls_->write_timeout_ms)
    deadline = start + c.cls_->write_timeout_ms;
  else
    has_deadline = false;
  while (!data.empty()) {
    std::error_code ec;
    ssize_t n = sys::send(c.fd_, data.data(), data.size(), ec);
    if (n > 0) {
      loop.blocking_bytes_out().fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (!sys::would_block(ec)) {
      close(c, ec);
      return ec;
    }
    int timeout = -1;
    if (has_deadline)
      timeout = std::max<std::int32_t>(0, static_cast<std::int32_t>(deadline - eng.clock_ms()));
    pollfd pfd{c.fd_, POLLOUT, 0};
    int r = ::poll(&pfd, 1, timeout);
    if (r == 0) {
      close(c, errc::write_timeout);
      return errc::write_timeout;
    }
  }
  c.last_active_ = eng.clock_ms();
  c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_write_deadline);
  return {};
}

void blocking_runner::established(conn& c) {
  if (!c.is_open()) return;  // as loop_impl::established: a failed handshake, no on_close
  c.flags_ |= conn::f_opened;
  rebound(c);  // the handler's read deadline replaces the handshake's
  if (c.cls_->on_open) c.cls_->on_open(c.cls_->handler, c);
}

void blocking_runner::end_of_stream(conn& c) {
  c.flags_ |= conn::f_eof;
  if (c.cls_->on_end) {
    c.cls_->on_end(c.cls_->handler, c);
  } else {
    // As the loop's on_eof: close_notify, straight to the socket (nothing is queued in
    // blocking mode), errors ignored.
    if (c.has_transport() && (c.flags_ & conn::f_opened)) transport_conn::close_notify(c, true);
    close(c, errc::eof);
  }
}

// Through a transport: read 16 KiB (one TLS record) at a time and write it encrypted.
std::error_code blocking_runner::send_file_transport(conn& c, int fd, std::uint64_t offset,
                                                     std::uint64_t length) {
  char piece[16384];
  while (length > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, sizeof piece));
    const ssize_t n = ::pread(fd, piece, want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::error_code ec = n < 0 ? errno_code(errno) : std::make_error_code(std::errc::io_error);
      close(c, ec);
      return ec;
    }
    if (auto ec = transport_hooks().write(c, transport_conn::slot(c).state,
                                          {piece, static_cast<std::size_t>(n)}))
      return ec;
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::uint64_t>(n);
  }
  return {};
}

std::error_code blocking_runner::send_file(conn& c, int fd, std::uint64_t offset,
                                           std::uint64_t length) {
  if (c.flags_ & (conn::f_closing | conn::f_write_shut)) return errc::not_connected;
  if (c.has_transport()) {
    if (!(c.flags_ & conn::f_opened)) return errc::not_connected;
    return send_file_transport(c, fd, offset, length);
  }
  loop_impl& loop = loop_impl::of(c);
  engine_impl& eng = loop.engine();
  const std::uint32_t deadline = c.flags_ & conn::f_write_deadline
                                     ? c.write_deadline_
                                     : eng.clock_ms() + c.cls_->write_timeout_ms;
  const bool has_deadline = (c.flags_ & conn::f_write_deadline) || c.cls_->write_timeout_ms;
  while (length > 0) {
    std::error_code ec;
    const ssize_t n =
        sys::sendfile(c.fd_, fd, offset, std::min<std::uint64_t>(length, 1u << 30), ec);
    if (n > 0) {
      loop.blocking_bytes_out().fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      length -= static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) {  // the file ended early: the peer was promised bytes it will not get
      close(c, std::make_error_code(std::errc::io_error));
      return std::make_error_code(std::errc::io_error);
    }
    if (!sys::would_block(ec)) {
      close(c, ec);
      return ec;
    }
    int timeout = -1;
    if (has_deadline)
      timeout = std::max<std::int32_t>(0, static_cast<std::int32_t>(deadline - eng.clock_ms()));
    pollfd pfd{c.fd_, POLLOUT, 0};
    if (::poll(&pfd, 1, timeout) == 0) {
      close(c, errc::write_timeout);
      return errc::write_timeout;
    }
  }
  c.last_active_ = eng.clock_ms();
  c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_write_deadline);
  return {};
}

void blocking_runner::close(conn& c, std::error_code reason) {
  if (c.flags_ & conn::f_closing) return;
  c.flags_ |= conn::f_closing;
  // stop() shuts the socket down to wake the thread: whatever error that caused (EPIPE in a
  // write, EOF in a read), the first cause is the stop.
  std::error_code cause = reason;
  if (c.bs_->overflow) cause = errc::write_queue_overflow;
  if (c.bs_->stop) cause = errc::shutdown;
  c.set_cause(cause);
}

void blocking_runner::shutdown_write(conn& c) {
  if (c.flags_ & (conn::f_closing | conn::f_write_shut)) return;
  ::shutdown(c.fd_, SHUT_WR);
  c.flags_ |= conn::f_write_shut;
}

void blocking_runner::rebound(conn& c) {
  c.last_active_ = loop_impl::of(c).engine().clock_ms();
  set_read_deadline(c, c.cls_->read_timeout_ms);
}

void blocking_runner::set_read_deadline(conn& c, std::uint32_t ms) {
  if (!ms) {
    c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_read_deadline);
    return;
  }
  c.read_deadline_ = loop_impl::of(c).engine().clock_ms() + ms;
  c.flags_ |= conn::f_read_deadline;
}

void blocking_runner::set_write_deadline(conn& c, std::uint32_t ms) {
  if (!ms) {
    c.flags_ = static_cast<std::uint16_t>(c.flags_ & ~conn::f_write_deadline);
    return;
  }
  c.write_deadline_ = loop_impl::of(c).engine().clock_ms() + ms;
  c.flags_ |= conn::f_write_deadline;
}

}  // namespace nbio::detail
