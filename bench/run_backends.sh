#!/usr/bin/env bash
# nbio on io_uring against nbio on epoll, cell by cell, in one invocation (bench/backends.py has
# the cells, the environment it reads and what it writes).
#
# usage: bench/run_backends.sh [BUILD]             BUILD: the build directory (default: build)
set -euo pipefail
BUILD=${1:-build}
for b in tcp_echo ws_echo http_hello echo_load tcp_idle nbio-load; do
  if [ ! -x "$BUILD/bin/$b" ]; then
    echo "run_backends: $BUILD/bin/$b is not built (cmake --build $BUILD --target bench_tools)" >&2
    exit 1
  fi
done
exec python3 "$(dirname "$0")/backends.py" "$BUILD"
