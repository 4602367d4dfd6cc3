#!/usr/bin/env bash
# Installs the Debian packages nbio needs, for one of three uses (the first argument):
#   demo   what `make demo` builds and runs: a compiler, CMake, Ninja, OpenSSL, zlib, liburing, CLI11,
#          nlohmann-json, GoogleTest (CMake configures the test targets, demo builds none),
#          gnuplot (the demo's plot). A fresh Debian 12 installs these in about a minute.
#   test   (the default) everything `make build` and `make test` need besides: clang (the
#          fuzzers and the sanitized test trees), clang-format, and the real peers the tests
#          play against (curl, wrk, slowhttptest, nginx, Python's websockets, Node and its ws
#          module, Chromium, openssl).
#   bench  test's packages and the benchmarks' baselines (Boost, libuv, Google Benchmark,
#          http-parser): only `make bench*` needs these; without them CMake leaves the
#          benchmark targets out and says so.
# As root it installs whatever is missing; otherwise it prints the apt command.
# Every make target calls it first, so a fresh Debian 12 machine needs nothing by hand.
set -euo pipefail

use="${1:-test}"
packages=(
  build-essential cmake ninja-build pkg-config libssl-dev zlib1g-dev liburing-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev gnuplot-nox procps
)
case "$use" in
  demo) ;;
  test | bench)
    packages+=(
      clang clang-format libclang-rt-14-dev
      curl openssl util-linux iproute2 wrk slowhttptest nginx python3-websockets chromium
    )
    [ "$use" = bench ] && packages+=(libbenchmark-dev libboost-dev libuv1-dev libhttp-parser-dev)
    ;;
  *)
    echo "deps.sh: unknown use '$use' (demo, test or bench)" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js with npm, for Node's ws in the WebSocket interop tests: Debian's, unless a node with
# npm is installed already (a NodeSource nodejs bundles npm and conflicts with Debian's npm).
if [ "$use" != demo ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

# Node's ws, from the npm registry, into build/node (ignored by git). Without it (no network)
# the tests that need it skip, and fail on CI (CI=true).
install_node_ws() {
  [ "$use" = demo ] && return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/node"
  [ -f "$dir/node_modules/ws/package.json" ] && return 0
  command -v npm >/dev/null 2>&1 || return 0
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error ws@8 \
      >/tmp/nbio-npm.log 2>&1; then
    echo "deps: npm install ws failed (see /tmp/nbio-npm.log); the Node interop tests will skip (fail on CI)" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  install_node_ws
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "nbio needs these Debian packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/nbio-deps.log 2>&1; then
  apt-get update >>/tmp/nbio-deps.log 2>&1
  apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/nbio-deps.log 2>&1 || {
    cat /tmp/nbio-deps.log >&2
    exit 1
  }
fi
install_node_ws
