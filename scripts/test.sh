#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: usage  scripts/test.sh BUILD_DIR
#
#   1. Release   ctest in BUILD_DIR (already built by `make build`): every test
#   2. ASan+UBSan  build-asan (Debug), every test except the labels "heavy" (15,000 connections,
#                  EMFILE CPU measurement: too slow and too memory-hungry under ASan), "static"
#                  (header checks) and "fuzz" (the fuzzers carry their own sanitizers): those
#                  two do not depend on the build type and ran in step 1
#   3. TSan      build-tsan (Debug), the "threading" label only
# Both sanitized trees leave out the headless-Chromium cases: the browser is the costliest peer
# (a multi-process start per case, ~40 s of a 2-core machine per tree), and its frames reach
# the same parser and session paths that Autobahn, Python's websockets and Node's ws drive in
# those trees; step 1 runs Chromium in every I/O mode, and on io_uring. They compile with
# clang++ and -g1: clang compiles them 1.5-3x faster than g++ (the sanitized builds were most
# of `make test`'s time), its sanitizers have caught races g++'s missed, and the library is
# then checked by both compilers' warnings; -g1 keeps file:line in reports.
# Each sanitized tree is compiled (niced) while the step before it runs its tests.
#
# Each step prints its CTest summary; the last line is the sum over the three runs, exactly
# "N passed, M failed, K skipped": a skipped test is never counted as passed. Each skip is
# listed with its reason. A test skips only for a reason that holds wherever it runs (the
# open-files limit, port 443 taken); one whose third-party peer is missing fails instead when
# CI=true (tests/support/peer.hpp), since there a missing peer is a missing install step.
# A sanitizer build that fails to configure or compile counts as one failed test (its tests
# cannot run). Exits non-zero when anything failed.
#
# Environment: JOBS (default 2: the suite shares two cores), NBIO_TEST_SKIP_SANITIZERS=1 runs
# step 1 only. Builds are incremental; ccache is used when installed.
set -uo pipefail

build_dir="${1:?usage: scripts/test.sh BUILD_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="${JOBS:-2}"
cd "$root" || exit 1
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

export ASAN_OPTIONS="detect_leaks=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp"  # why: tests/lsan.supp
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

total_passed=0
total_failed=0
total_skipped=0
summaries=()
skip_reasons=()

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# run_ctest NAME DIR [ctest args...]: runs ctest, adds its counts to the totals.
run_ctest() {
  local name="$1" dir="$2"
  shift 2
  local log="$dir/ctest-$name.log"
  local start=$SECONDS
  echo "== $name: ctest $*"
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$jobs" --timeout 600 "$@") 2>&1 |
    tee "$log"
  local rc=${PIPESTATUS[0]}
  local elapsed=$((SECONDS - start))
  local line passed failed skipped
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)"
  # CTest counts a skipped test (its output matched SKIP_REGULAR_EXPRESSION) among those that
  # did not fail, and lists it under "The following tests did not run:" as "(Skipped)".
  skipped=$(grep -cE '^[[:space:]]+[0-9]+ - .* \(Skipped\)$' "$log")
  if [[ "$line" =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed="${BASH_REMATCH[1]}"
    passed=$((BASH_REMATCH[2] - failed - skipped))
  else
    # No summary: ctest itself failed (no tests found, crash while listing).
    passed=0
    failed=1
    skipped=0
  fi
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  summaries+=("$name: $passed passed, $failed failed, $skipped skipped (${elapsed}s)")
  # Each skip's reason: the line after GoogleTest's "file:line: Skipped" in ctest's log.
  if [ "$skipped" -gt 0 ]; then
    local reason
    while IFS= read -r reason; do
      skip_reasons+=("$name: $reason")
    done < <(awk '/^[0-9]+\/[0-9]+ Testing: / {test = $3}
                  want {print test ": " $0; want = 0}
                  /: Skipped$/ {want = 1}' "$dir/Testing/Temporary/LastTest.log")
  fi
}

# sanitizer_build NAME DIR SANITIZE TARGETS...: configures (once) and builds a sanitized tree.
sanitizer_build() {
  local name="$1" dir="$2" sanitize="$3"
  shift 3
  local start=$SECONDS
  echo "== $name: build in $dir (NBIO_SANITIZE=$sanitize)"
  mkdir -p "$dir"
  # A tree configured before with another compiler is configured again from scratch.
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:FILEPATH=.*clang++$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  if ! cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DNBIO_SANITIZE="$sanitize" -DNBIO_BUILD_TESTS=ON -DNBIO_BUILD_BENCH=OFF \
    -DNBIO_BUILD_APPS=OFF -DNBIO_BUILD_EXAMPLES=OFF -DNBIO_FAULT_INJECTION=ON "${launcher[@]}" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    return 1
  fi
  nice -n "${build_nice:-0}" cmake --build "$dir" -j "$jobs" --target "$@" || return 1
  echo "$name build: $((SECONDS - start))s"
}

if [ ! -f "$build_dir/CTestTestfile.cmake" ]; then
  echo "test.sh: $build_dir is not a configured build (run: make build)" >&2
  exit 2
fi

# background_build NAME DIR SANITIZE TARGETS...: sanitizer_build in the background, niced, its
# output in DIR/build.log (printed by finish_build). The tests of the step before leave about a
# core idle (they wait on sockets and timers: the Release ctest used 1.0 core of 2 on average),
# so the next tree compiles meanwhile; the tests keep priority and assert no timing.
background_build() {
  local dir="$2"
  mkdir -p "$dir"
  rm -f "$dir/build.rc"
  (
    build_nice=10
    sanitizer_build "$@" >"$dir/build.log" 2>&1
    echo $? >"$dir/build.rc"
  ) &
}
# finish_build NAME DIR PID: waits for its background build; true when it succeeded.
finish_build() {
  local name="$1" dir="$2"
  wait "$3"
  cat "$dir/build.log"
  if [ "$(cat "$dir/build.rc" 2>/dev/null)" != 0 ]; then
    echo "== $name: build failed"
    total_failed=$((total_failed + 1))
    summaries+=("$name: build failed")
    return 1
  fi
}

sanitizers=0
[ "${NBIO_TEST_SKIP_SANITIZERS:-0}" != 1 ] && sanitizers=1
asan_dir="$root/build-asan"
tsan_dir="$root/build-tsan"

if [ "$sanitizers" = 1 ]; then
  background_build asan "$asan_dir" "address,undefined" nbio_unit_tests nbio_integration_tests
  asan_pid=$!
fi
run_ctest release "$build_dir"

if [ "$sanitizers" = 1 ]; then
  asan_built=0
  finish_build asan "$asan_dir" "$asan_pid" && asan_built=1
  background_build tsan "$tsan_dir" thread nbio_integration_tests
  tsan_pid=$!
  [ "$asan_built" = 1 ] && run_ctest asan "$asan_dir" -LE "heavy|static|fuzz" -E chromium
  finish_build tsan "$tsan_dir" "$tsan_pid" && run_ctest tsan "$tsan_dir" -L threading -E chromium
fi

echo
for s in "${summaries[@]}"; do echo "$s"; done
if [ ${#skip_reasons[@]} -gt 0 ]; then
  echo "skipped:"
  for s in "${skip_reasons[@]}"; do echo "  $s"; done
fi
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
