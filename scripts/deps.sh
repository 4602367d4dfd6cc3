#!/usr/bin/env bash
# Installs the Debian packages nbio's build, tests, demo and benchmarks need.
# As root it installs whatever is missing; otherwise it prints the apt command.
# Every make target calls it first, so a fresh Debian 12 machine needs nothing by hand.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev zlib1g-dev liburing-dev
  libcli11-dev nlohmann-json3-dev gnuplot-nox
  libboost-dev libuv1-dev libhttp-parser-dev
  curl procps util-linux iproute2 wrk slowhttptest nginx python3-websockets
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js with npm, for Node's ws in the WebSocket interop tests: Debian's, unless a node with
# npm is installed already (a NodeSource nodejs bundles npm and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

# Node's ws, from the npm registry, into build/node (ignored by git). Without it (no network)
# the tests that need it skip.
install_node_ws() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/node"
  [ -f "$dir/node_modules/ws/package.json" ] && return 0
  command -v npm >/dev/null 2>&1 || return 0
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error ws@8 \
      >/tmp/nbio-npm.log 2>&1; then
    echo "deps: npm install ws failed (see /tmp/nbio-npm.log); the Node interop tests will skip" >&2
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
