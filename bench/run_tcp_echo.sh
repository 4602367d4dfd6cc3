#!/usr/bin/env bash
# TCP echo: throughput and latency of nbio against the Boost.Asio and libuv baselines.
#
# usage: bench/run_tcp_echo.sh [BUILD]            BUILD: the build directory (default: build)
#
# For every server and every {CONNECTIONS} x {SIZES} pair: start the server pinned to CPU 0,
# run echo_load pinned to CPU 1 (one message in flight per connection, WARMUP then DURATION
# seconds), stop the server. A server is started afresh for each pair, on 127.0.0.1.
#   nbio           tcp_echo --loops 1 (the non-blocking engine, one loop)
#   nbio_blocking  tcp_echo --loops 1 --io-mode blocking (at 100 connections only)
#   asio, libuv    bench/baselines/{asio,libuv}_echo, single-threaded
# A server whose binary is not built is skipped with a note.
#
# The machine is shared and noisy (single runs of one server swing by +-20%), so every pair runs
# ROUNDS times, the servers interleaved within each round, and the table shows the median of
# each figure over the rounds.
#
# Environment: DURATION (3) WARMUP (1) seconds; ROUNDS (3); CONNECTIONS ("100 10000"); SIZES ("64 4096");
# SERVERS ("nbio nbio_blocking asio libuv"); PORT_BASE (19100); SERVER_CPU (0); LOAD_CPU (1);
# LOAD_OPTS (extra echo_load options, e.g. "--busy-poll").
#
# Output: a table with msgs/s, p50, p99, the server's CPU use and messages per server
# CPU-second per run, and two ratios of nbio to the better baseline: msgs/s, and msgs per server
# CPU-second (with one load core the client often limits msgs/s for every server alike, so the
# second ratio is the one that compares servers); BUILD/bench/tcp_echo.json (every run's
# echo_load result); logs in BUILD/bench/tcp_echo/.
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bin
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-"100 10000"}
SIZES=${SIZES:-"64 4096"}
SERVERS=${SERVERS:-"nbio nbio_blocking asio libuv"}
read -r -a load_opts <<<"${LOAD_OPTS:-}"
PORT_BASE=${PORT_BASE:-19100}
OUT=$BUILD/bench
RUNS=$OUT/tcp_echo

# shellcheck source=server_control.sh source-path=SCRIPTDIR
source "$(dirname "$0")/server_control.sh"

if [ ! -x "$BIN/echo_load" ]; then
  echo "run_tcp_echo: $BIN/echo_load is not built (cmake --build $BUILD --target echo_load)" >&2
  exit 1
fi
mkdir -p "$RUNS"
rm -f "$RUNS"/*.json
warn_if_busy

# The blocking mode runs a thread per connection: measured where that is reasonable.
applies() { [ "$1" != nbio_blocking ] || [ "$2" -le 100 ]; }

# Load limit: warmup + duration, plus time to connect; SIGINT first (echo_load then reports).
limit=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { print d + w + 60 }')

failed=0
runs_json=()
echo "tcp_echo: $ROUNDS rounds, ${DURATION}s per run after ${WARMUP}s warmup; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
available=()
for server in $SERVERS; do
  binary=$(server_binary "$server")
  if [ -x "$binary" ]; then
    available+=("$server")
  else
    echo "  $server: skipped ($binary not built)"
    runs_json+=("{\"server\": \"$server\", \"status\": \"skipped\", \"reason\": \"binary not built\"}")
  fi
done
for round in $(seq "$ROUNDS"); do
  for conns in $CONNECTIONS; do
    for size in $SIZES; do
      for server in "${available[@]}"; do
        applies "$server" "$conns" || continue
        name=$server-$conns-$size-r$round
        result=$RUNS/$name.json
        next_free_port
        server_command "$server" "$port"
        printf '  round %s %-14s %6s conns %5s B ... ' "$round" "$server" "$conns" "$size"
        if ! start_server "$RUNS/$name.server.log" "${cmd[@]}"; then
          echo "did not start"
          runs_json+=("{\"server\": \"$server\", \"connections\": $conns, \"size\": $size, \"status\": \"failed\", \"reason\": \"server did not start\"}")
          failed=1
          continue
        fi
        status=ok
        run_load "$limit" "$BIN/echo_load" --host "$HOST" --port "$port" \
          --connections "$conns" --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
          --server-pid "$server_pid" --json "$result" "${load_opts[@]}" >/dev/null 2>"$RUNS/$name.load.log" || status=failed
        stop_server
        if [ ! -s "$result" ]; then
          echo "no result (see $RUNS/$name.load.log)"
          runs_json+=("{\"server\": \"$server\", \"connections\": $conns, \"size\": $size, \"status\": \"failed\", \"reason\": \"echo_load produced no result\"}")
          failed=1
          continue
        fi
        [ "$status" = ok ] || failed=1
        printf '%.0f msgs/s, %s errors%s\n' "$(json_num "$result" msgs_per_sec)" \
          "$(json_num "$result" errors)" "$([ "$status" = ok ] || echo ' (failed)')"
        runs_json+=("{\"server\": \"$server\", \"connections\": $conns, \"size\": $size, \"round\": $round, \"status\": \"$status\", \"result\": $(cat "$result")}")
      done
    done
  done
done

# best_baseline CONNS SIZE KEY: "NAME VALUE" of the baseline with the highest median KEY.
best_baseline() {
  local name="" value=0 baseline v
  for baseline in asio libuv; do
    v=$(median "$baseline" "$1" "$2" "$3")
    [ -n "$v" ] || continue
    if awk -v a="$v" -v b="$value" 'BEGIN { exit !(a > b) }'; then
      name=$baseline
      value=$v
    fi
  done
  [ -z "$name" ] || echo "$name $value"
}

# median SERVER CONNS SIZE KEY: the median of KEY over the rounds of one pair ("" if none).
median() {
  local values=() r v
  for r in $(seq "$ROUNDS"); do
    v=$(json_num "$RUNS/$1-$2-$3-r$r.json" "$4")
    [ -n "$v" ] && values+=("$v")
  done
  [ ${#values[@]} -gt 0 ] || return 0
  printf '%s\n' "${values[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# Table and ratios. A missing run prints as "-".
echo
printf '%-14s %7s %6s %12s %10s %10s %6s %12s %7s\n' server conns size msgs/s p50_us p99_us cpu% \
  msgs/cpu_s errors
comparisons=()
for conns in $CONNECTIONS; do
  for size in $SIZES; do
    for server in $SERVERS; do
      applies "$server" "$conns" || continue
      rate=$(median "$server" "$conns" "$size" msgs_per_sec)
      if [ -n "$rate" ]; then
        printf '%-14s %7s %6s %12.0f %10.1f %10.1f %6.0f %12.0f %7s\n' "$server" "$conns" \
          "$size" "$rate" "$(median "$server" "$conns" "$size" p50_us)" \
          "$(median "$server" "$conns" "$size" p99_us)" \
          "$(median "$server" "$conns" "$size" server_cpu_pct)" \
          "$(median "$server" "$conns" "$size" msgs_per_server_cpu_s)" \
          "$(median "$server" "$conns" "$size" errors)"
      else
        printf '%-14s %7s %6s %12s %10s %10s %6s %12s %7s\n' "$server" "$conns" "$size" - - - - - -
      fi
    done
    nbio=$(median nbio "$conns" "$size" msgs_per_sec)
    read -r best best_rate <<<"$(best_baseline "$conns" "$size" msgs_per_sec)"
    # The same comparison by messages per server CPU-second.
    nbio_eff=$(median nbio "$conns" "$size" msgs_per_server_cpu_s)
    read -r best_eff_name best_eff <<<"$(best_baseline "$conns" "$size" msgs_per_server_cpu_s)"
    if [ -n "$nbio" ] && [ -n "$best" ]; then
      ratio=$(awk -v a="$nbio" -v b="$best_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
      eff_ratio=0
      if [ -n "$nbio_eff" ] && [ -n "$best_eff_name" ]; then
        eff_ratio=$(awk -v a="$nbio_eff" -v b="$best_eff" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
      fi
      printf '%-14s %7s %6s   msgs/s: nbio / %s = %s   msgs per server CPU-s: nbio / %s = %s\n' \
        ratio "$conns" "$size" "$best" "$ratio" "${best_eff_name:--}" "$eff_ratio"
      comparisons+=("{\"connections\": $conns, \"size\": $size, \"nbio_msgs_per_sec\": $nbio, \"best_baseline\": \"$best\", \"baseline_msgs_per_sec\": $best_rate, \"ratio\": $ratio, \"best_baseline_by_cpu\": \"$best_eff_name\", \"cpu_efficiency_ratio\": $eff_ratio}")
    fi
  done
done

join() { local IFS=,; echo "$*"; }
{
  echo "{"
  echo "  \"benchmark\": \"tcp_echo\", \"host\": \"$HOST\","
  echo "  \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"rounds\": $ROUNDS,"
  echo "  \"server_cpu\": \"$SERVER_CPU\", \"load_cpu\": \"$LOAD_CPU\", \"nproc\": $(nproc),"
  echo "  \"runs\": [$(join "${runs_json[@]}")],"
  echo "  \"comparisons\": [$(join "${comparisons[@]}")]"
  echo "}"
} >"$OUT/tcp_echo.json"
echo
echo "wrote $OUT/tcp_echo.json"
exit "$failed"
