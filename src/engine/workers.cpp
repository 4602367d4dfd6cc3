// Private. The worker-process supervisor.
#include "nbio/engine/workers.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "engine/sibling_ports.hpp"

namespace nbio {

namespace {

// A progress line on stderr when workers_options::report is set; checked like printf.
[[gnu::format(printf, 2, 3)]] void report(bool on, const char* fmt, ...) {
  if (!on) return;
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fflush(stderr);
}

struct worker_slot {
  pid_t pid = 0;
  unsigned index = 0;
};

sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  return set;
}

pid_t spawn(unsigned index, const std::function<int(unsigned)>& worker, pid_t supervisor,
            detail::sibling_ports* siblings) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;  // the supervisor, or -1
  // The worker: die with the supervisor, take SIGTERM/SIGINT by sigwait (blocked, as the
  // supervisor had them), and leave SIGCHLD to its default.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != supervisor) ::_exit(1);  // the supervisor died before prctl
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  // Each worker listens on its own: the table tells a sibling's sockets from another server's.
  detail::sibling_ports::current() = siblings;
  int status = 1;
  try {
    status = worker(index);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nbio worker %u: %s\n", index, e.what());
  }
  std::fflush(nullptr);
  ::_exit(status);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

workers_result run_workers(const workers_options& options,
                           const std::function<int(unsigned)>& worker) {
  unsigned count =
      options.count ? options.count : std::max(1u, std::thread::hardware_concurrency());
  workers_result result;
  sigset_t signals = supervisor_signals(), previous;
  ::sigprocmask(SIG_BLOCK, &signals, &previous);
  const pid_t self = ::getpid();
  detail::sibling_ports* siblings = detail::sibling_ports::create();
  if (!siblings) {
    std::error_code ec(errno, std::generic_category());
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    throw std::system_error(ec, "nbio: the workers' shared table of ports");
  }

  std::vector<worker_slot> workers;
  for (unsigned i = 0; i < count; ++i) {
    pid_t pid = spawn(i, worker, self, siblings);
    if (pid < 0) {
      std::error_code ec(errno, std::generic_category());
      for (auto& w : workers)
        ::kill(w.pid, SIGKILL);
      for (auto& w : workers)
        ::waitpid(w.pid, nullptr, 0);
      ::sigprocmask(SIG_SETMASK, &previous, nullptr);
      detail::sibling_ports::destroy(siblings);
      throw std::system_error(ec, "nbio: fork of worker " + std::to_string(i));
    }
    workers.push_back({pid, i});
    ++result.started;
    report(options.report, "nbio workers: worker %u started (pid %d)\n", i, static_cast<int>(pid));
  }

  bool stopping = false;
  auto stop_all = [&](int sig) {
    stopping = true;
    for (auto& w : workers)
      ::kill(w.pid, sig);
  };
  std::chrono::steady_clock::time_point kill_at{};
  while (!workers.empty()) {
    siginfo_t info{};
    int sig;
    if (stopping) {
      auto left = kill_at - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) {
        for (auto& w : workers) {
          ::kill(w.pid, SIGKILL);
          ++result.killed;
        }
        kill_at = std::chrono::steady_clock::now() + std::chrono::hours(1);  // SIGKILL is final
        continue;
      }
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                       static_cast<long>(ns % 1'000'000'000)};
      sig = ::sigtimedwait(&signals, &info, &timeout);
      if (sig < 0) continue;  // timeout (EAGAIN) or EINTR: check the deadline again
    } else {
      sig = ::sigwaitinfo(&signals, &info);
      if (sig < 0) continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping) {
        report(options.report, "nbio workers: %s: stopping %zu workers\n", strsignal(sig),
               workers.size());
        stop_all(SIGTERM);
        kill_at = std::chrono::steady_clock::now() + options.stop_deadline;
      }
      continue;
    }
    // SIGCHLD: reap every worker that ended (signals of the same kind merge).
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      auto it = std::find_if(workers.begin(), workers.end(),
                             [pid](const worker_slot& w) { return w.pid == pid; });
      if (it == workers.end()) continue;  // not ours (the caller's own child)
      unsigned index = it->index;
      workers.erase(it);
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (stopping) {
        if (!clean && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) result.exit_code = 1;
        report(options.report, "nbio workers: worker %u (pid %d) %s\n", index,
               static_cast<int>(pid), describe(status).c_str());
        continue;
      }
      if (clean) {
        report(options.report, "nbio workers: worker %u (pid %d) exited\n", index,
               static_cast<int>(pid));
        continue;
      }
      ++result.crashed;
      report(options.report, "nbio workers: worker %u (pid %d) %s\n", index, static_cast<int>(pid),
             describe(status).c_str());
      if (siblings->refused_by(pid)) {  // as nginx: a port in use is fatal, not worth a retry
        report(options.report, "nbio workers: a port is in use by another server: stopping all\n");
        result.exit_code = 1;
        stop_all(SIGTERM);
        kill_at = std::chrono::steady_clock::now() + options.stop_deadline;
        continue;
      }
      if (result.restarted >= options.max_restarts) {
        report(options.report, "nbio workers: %u restarts: giving up, stopping all\n",
               result.restarted);
        result.exit_code = 1;
        stop_all(SIGTERM);
        kill_at = std::chrono::steady_clock::now() + options.stop_deadline;
        continue;
      }
      std::this_thread::sleep_for(options.restart_delay);
      pid_t again = spawn(index, worker, self, siblings);
      if (again < 0) {
        report(options.report, "nbio workers: restart of worker %u failed: %s\n", index,
               std::strerror(errno));
        result.exit_code = 1;
        continue;
      }
      workers.push_back({again, index});
      ++result.started;
      ++result.restarted;
      report(options.report, "nbio workers: worker %u restarted (pid %d)\n", index,
             static_cast<int>(again));
    }
    if (workers.empty() && !stopping) break;  // every worker exited on its own
  }
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  detail::sibling_ports::destroy(siblings);
  if (result.crashed && !stopping) result.exit_code = 1;
  return result;
}

}  // namespace nbio
