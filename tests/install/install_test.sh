#!/usr/bin/env bash
# install_test.sh SOURCE_DIR BUILD_DIR: installs nbio from BUILD_DIR into a scratch prefix (not
# the one BUILD_DIR was configured with, as `make install PREFIX=...` does), then builds and
# runs a consumer twice: with find_package(nbio) and with pkg-config.
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d /tmp/nbio-install.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/install/consumer" -B "$work/cmake" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"

libdir=$(ls -d "$work/prefix"/lib*/pkgconfig | head -n 1)
# The .pc file finds its prefix from where it lies (${pcfiledir}), so it needs no override.
flags=$(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs nbio)
case "$flags" in
  *"-I$work/prefix/"*) ;;
  *)
    echo "install_test: nbio.pc does not point into $work/prefix: $flags" >&2
    exit 1
    ;;
esac
c++ "$src/tests/install/consumer/main.cpp" -o "$work/pc_consumer" $flags
"$work/pc_consumer"
