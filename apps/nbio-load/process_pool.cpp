#include "process_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

namespace nbio_load {

bool write_json_line(int fd, const nlohmann::json& j) {
  std::string line = j.dump();
  line += '\n';
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

process_pool::process_pool(unsigned count, const worker_fn& worker_main) {
  workers_.resize(count);
  for (unsigned i = 0; i < count; ++i) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "nbio-load: pipe");
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int e = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::system_error(e, std::generic_category(), "nbio-load: fork");
    }
    if (pid == 0) {
      // The child: a worker dies with its parent instead of loading the server forever.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      ::close(fds[0]);
      for (unsigned k = 0; k < i; ++k)
        ::close(workers_[k].fd);
      const int rc = worker_main(i, fds[1]);
      std::fflush(stdout);
      std::fflush(stderr);
      ::_exit(rc);
    }
    ::close(fds[1]);
    workers_[i].pid = pid;
    workers_[i].fd = fds[0];
  }
}

process_pool::~process_pool() {
  for (auto& w : workers_) {
    if (w.fd >= 0) ::close(w.fd);
    if (w.pid > 0 && !w.exited) {
      ::kill(w.pid, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);
    }
  }
}

void process_pool::signal_all(int sig) {
  for (auto& w : workers_)
    if (w.pid > 0 && !w.exited) ::kill(w.pid, sig);
}

void process_pool::handle_line(worker& w, const std::string& line, outcome& out) {
  try {
    const auto j = nlohmann::json::parse(line);
    const auto type = j.at("type").get<std::string>();
    if (type == "progress") {
      w.progress = load_progress::from_json(j.at("progress"));
    } else if (type == "result" && !w.reported) {
      out.result.merge(load_result::from_json(j.at("result")));
      w.reported = true;
      ++out.reported;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nbio-load: bad line from worker %d: %s\n", static_cast<int>(w.pid),
                 e.what());
  }
}

process_pool::outcome process_pool::run(const std::function<void(const load_progress&)>& on_tick,
                                        const std::function<bool()>& stop_requested,
                                        std::chrono::milliseconds deadline) {
  using steady = std::chrono::steady_clock;
  outcome out;
  const auto start = steady::now();
  // A quarter second after the workers' own once-a-second reports, so each line has fresh ones.
  auto next_tick = start + std::chrono::milliseconds(1250);
  bool stop_sent = false;
  bool go_sent = false;
  constexpr auto kill_grace = std::chrono::seconds(30);
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<worker*> owners;
    for (auto& w : workers_)
      if (w.fd >= 0) {
        fds.push_back({w.fd, POLLIN, 0});
        owners.push_back(&w);
      }
    if (fds.empty()) break;
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - steady::now()).count();
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait)));
    for (std::size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      worker& w = *owners[i];
      char buf[16384];
      const ssize_t got = ::read(w.fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(w.fd);
        w.fd = -1;
        continue;
      }
      w.buffer.append(buf, static_cast<std::size_t>(got));
      std::size_t nl;
      while ((nl = w.buffer.find('\n')) != std::string::npos) {
        handle_line(w, w.buffer.substr(0, nl), out);
        w.buffer.erase(0, nl + 1);
      }
    }
    const auto now = steady::now();
    if (now >= next_tick) {
      next_tick += std::chrono::seconds(1);
      load_progress sum;
      for (const auto& w : workers_)
        sum += w.progress;
      if (on_tick) on_tick(sum);
    }
    // --ramp-first: the go once every worker still running has opened its connections.
    const auto ramped = [](const worker& w) { return w.progress.ramped; };
    if (!go_sent && std::any_of(workers_.begin(), workers_.end(), ramped) &&
        std::all_of(workers_.begin(), workers_.end(),
                    [&](const worker& w) { return w.fd < 0 || ramped(w); })) {
      go_sent = true;
      signal_all(SIGUSR1);
    }
    if (!stop_sent && stop_requested && stop_requested()) {
      stop_sent = true;
      signal_all(SIGTERM);
    }
    // Past the deadline: first ask (SIGTERM: a worker ends its run and still reports what it
    // measured; a loaded machine with many workers can simply be late), kill only if that too
    // goes unanswered for a while.
    if (now - start > deadline && !stop_sent) {
      stop_sent = true;
      signal_all(SIGTERM);
    }
    if (now - start > deadline + kill_grace && !out.timed_out) {
      out.timed_out = true;
      signal_all(SIGKILL);
    }
  }
  for (auto& w : workers_) {
    if (w.pid <= 0 || w.exited) continue;
    while (::waitpid(w.pid, &w.status, 0) < 0 && errno == EINTR) {
    }
    w.exited = true;
    const bool clean = WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0;
    if (!clean || !w.reported) ++out.failed;
  }
  return out;
}

}  // namespace nbio_load
