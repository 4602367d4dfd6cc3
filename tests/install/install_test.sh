#!/usr/bin/env bash
# install_test.sh SOURCE_DIR BUILD_DIR: installs nbio from BUILD_DIR into a scratch prefix, then
# builds and runs a consumer twice: with find_package(nbio) and with pkg-config.
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
# The .pc file names the configured prefix; point pkg-config at the scratch one.
PKG_CONFIG_PATH=$libdir c++ "$src/tests/install/consumer/main.cpp" -o "$work/pc_consumer" \
  $(PKG_CONFIG_PATH=$libdir pkg-config --define-variable=prefix="$work/prefix" --cflags --libs nbio)
"$work/pc_consumer"
