// fd_limit: lifts the open-files limit for the benchmark programs (bench-internal).
//
// The echo and idle benchmarks hold 10,000 to 19,000 sockets in one process, above the usual
// soft limit of 1,024 but under the hard limit, which an unprivileged process may raise to.
#pragma once

#include <sys/resource.h>

namespace bench {

// Raises RLIMIT_NOFILE's soft limit to the hard limit and returns the limit now in force
// (0 if it cannot be read).
inline rlim_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return limit.rlim_cur;
}

}  // namespace bench
