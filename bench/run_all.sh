#!/usr/bin/env bash
# Runs every benchmark against the binaries of a build; results land in BUILD/bench/.
#
# usage: bench/run_all.sh [BUILD]                 BUILD: the build directory (default: build)
# The environment knobs of run_tcp_echo.sh, run_tcp_idle.sh, http/run_http.sh and the
# tls/run_tls*.sh scripts apply (DURATION, WARMUP, ...).
# Every benchmark runs even if an earlier one fails; the exit status is non-zero if any did.
set -uo pipefail

BUILD=${1:-build}
here=$(dirname "$0")
status=0
"$here/run_tcp_echo.sh" "$BUILD" || status=1
echo
"$here/http/run_http.sh" "$BUILD" || status=1
"$here/run_tcp_idle.sh" "$BUILD" || status=1
echo
"$here/tls/run_tls.sh" "$BUILD" || status=1
echo
"$here/tls/run_tls_idle.sh" "$BUILD" || status=1
echo
# Parser micro benchmark (nbio against http-parser), on the load core.
mkdir -p "$BUILD/bench"
taskset -c "${LOAD_CPU:-1}" "$BUILD/bin/http_parser_bench" --benchmark_out="$BUILD/bench/http_parser.json" \
  --benchmark_out_format=json || status=1
echo
echo "results: $BUILD/bench/tcp_echo.json $BUILD/bench/http.json $BUILD/bench/tcp_idle.json $BUILD/bench/tls.json $BUILD/bench/tls_idle.json $BUILD/bench/http_parser.json"
exit "$status"
