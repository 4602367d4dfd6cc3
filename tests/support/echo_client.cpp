// Test support. Many echo exchanges at once from one thread.
#include "support/echo_client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "support/raw_socket.hpp"

namespace nbio_test {

bool run_echo_sessions(std::vector<echo_session>& sessions, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& s : sessions)
    set_nonblocking(s.fd.get());
  std::vector<pollfd> fds;
  std::vector<echo_session*> active;
  char buf[65536];
  for (;;) {
    fds.clear();
    active.clear();
    for (auto& s : sessions) {
      if (s.error || s.eof || s.received.size() >= s.payload.size()) continue;
      short events = POLLIN;
      if (s.sent < s.payload.size()) events |= POLLOUT;
      fds.push_back({s.fd.get(), events, 0});
      active.push_back(&s);
    }
    if (fds.empty()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return false;
    for (std::size_t i = 0; i < fds.size() && n > 0; ++i) {
      echo_session& s = *active[i];
      if (fds[i].revents & POLLOUT) {
        std::size_t chunk = std::min<std::size_t>(s.payload.size() - s.sent, 65536);
        ssize_t w = ::send(s.fd.get(), s.payload.data() + s.sent, chunk, MSG_NOSIGNAL);
        if (w > 0)
          s.sent += static_cast<std::size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          s.error = errno;
      }
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = ::recv(s.fd.get(), buf, sizeof(buf), 0);
        if (r > 0)
          s.received.append(buf, static_cast<std::size_t>(r));
        else if (r == 0)
          s.eof = true;
        else if (errno != EAGAIN && errno != EINTR)
          s.error = errno;
      }
    }
  }
  return std::all_of(sessions.begin(), sessions.end(),
                     [](const echo_session& s) { return s.received.size() >= s.payload.size(); });
}

}  // namespace nbio_test
