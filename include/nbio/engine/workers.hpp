// Public. Worker processes: N forked copies of a server on the same SO_REUSEPORT addresses,
// like nginx's workers, to hold more connections than one process's open-files limit allows
// and to survive a crash of one of them.
//
//   int main() {
//     return nbio::run_workers({.count = 4}, [](unsigned index) {
//       nbio::engine eng;                        // each worker: its own engine and listeners
//       eng.listen("0.0.0.0:8080", handler{});   // a fixed port: the kernel spreads connections
//       ...                                      // run until SIGTERM, then return an exit code
//     });
//   }
//
// The calling process becomes the supervisor: it forks the workers, forwards SIGTERM and SIGINT
// to them, reaps them, restarts one that crashed (killed by a signal or exited non-zero) after
// restart_delay, and returns once all have exited after a stop signal. Call it before any thread
// exists (fork copies only the calling thread) and before creating an engine. Port 0 cannot be
// shared between processes: give the listeners fixed ports. The workers' listeners share each
// port with their siblings' (the first worker to listen on an address checks it and records it
// in memory the supervisor shares with its workers; the others join), while a port another
// server holds fails with EADDRINUSE in every worker, as it would outside workers; a worker
// that then exits with an error (or a signal) is not restarted: the supervisor stops them all
// and returns exit_code 1.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace nbio {

struct workers_options {
  unsigned count = 0;  // worker processes; 0 means one per core
  // After the stop signal is forwarded, workers still running this long later get SIGKILL.
  std::chrono::milliseconds stop_deadline = std::chrono::seconds(10);
  // A crashed worker is started again after this pause (so a worker that crashes at once
  // cannot make the supervisor spin) ...
  std::chrono::milliseconds restart_delay = std::chrono::milliseconds(100);
  // ... at most this many times in all; past that the supervisor stops every worker.
  unsigned max_restarts = 100;
  bool report = true;  // one line on stderr per start, crash and exit
};

struct workers_result {
  unsigned started = 0;    // forks, restarts included
  unsigned restarted = 0;  // workers started again after a crash
  unsigned crashed = 0;    // exits by a signal or with a non-zero status before the stop
  unsigned killed = 0;     // still running at stop_deadline: SIGKILLed
  int exit_code = 0;       // 0 when every worker ended cleanly after the stop signal
};

// Runs worker(index) in `count` child processes (index 0..count-1; a restarted worker gets its
// index again) and supervises them until SIGTERM or SIGINT. In the workers, SIGTERM and SIGINT
// are blocked on entry (sigwait for them), and the worker gets SIGTERM if the supervisor dies.
// worker's return value is the worker's exit status. Throws std::system_error when fork fails
// for the first workers, or when the table of ports shared with the workers cannot be mapped.
workers_result run_workers(const workers_options& options,
                           const std::function<int(unsigned index)>& worker);

}  // namespace nbio
