// Private. The epoll back-end.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "engine/backend/poller.hpp"
#include "sys/fault.hpp"
#include "sys/socket.hpp"

namespace nbio::detail {

poller::poller() {
  fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

poller::~poller() {
  if (fd_ >= 0) ::close(fd_);
  std::free(scratch_);
}

static epoll_event make_event(std::uint32_t interest, bool edge, void* data) noexcept {
  epoll_event ev{};
  if (interest & poll_read) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (interest & poll_write) ev.events |= EPOLLOUT;
  if (edge) ev.events |= EPOLLET;
  ev.data.ptr = data;
  return ev;
}

// The one epoll_ctl call site, so a test can fail any registration (sys/fault.hpp).
static int ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  return fault::fail(fault::kind::epoll_ctl) ? -1 : ::epoll_ctl(epfd, op, fd, ev);
}

std::error_code poller::add(int fd, std::uint32_t interest, bool edge, void* data) noexcept {
  epoll_event ev = make_event(interest, edge, data);
  if (ctl(fd_, EPOLL_CTL_ADD, fd, &ev) < 0) return sys::last_error();
  return {};
}

std::error_code poller::modify(int fd, std::uint32_t interest, bool edge, void* data) noexcept {
  epoll_event ev = make_event(interest, edge, data);
  if (ctl(fd_, EPOLL_CTL_MOD, fd, &ev) < 0) return sys::last_error();
  return {};
}

std::error_code poller::remove(int fd) noexcept {
  epoll_event ev{};
  if (ctl(fd_, EPOLL_CTL_DEL, fd, &ev) < 0) return sys::last_error();
  return {};
}

int poller::wait(poll_event* out, int max, int timeout_ms) noexcept {
  if (scratch_size_ < max) {
    std::free(scratch_);
    scratch_ = std::malloc(sizeof(epoll_event) * static_cast<std::size_t>(max));
    scratch_size_ = scratch_ ? max : 0;
    if (!scratch_) return 0;
  }
  auto* evs = static_cast<epoll_event*>(scratch_);
  int n = ::epoll_wait(fd_, evs, max, timeout_ms);
  if (n < 0) return 0;  // EINTR: the loop simply turns again
  for (int i = 0; i < n; ++i) {
    std::uint32_t e = evs[i].events, f = 0;
    if (e & EPOLLIN) f |= poll_read;
    if (e & EPOLLOUT) f |= poll_write;
    if (e & (EPOLLHUP | EPOLLRDHUP)) f |= poll_hangup;
    if (e & EPOLLERR) f |= poll_error;
    out[i] = {evs[i].data.ptr, f};
  }
  return n;
}

}  // namespace nbio::detail
