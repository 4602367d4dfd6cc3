// Test support. Lifts RLIMIT_NOFILE's soft limit to the hard limit (an unprivileged process may).
#pragma once

#include <sys/resource.h>

namespace nbio_test {

// Returns the soft limit now in force (0 when it cannot be read).
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

}  // namespace nbio_test
