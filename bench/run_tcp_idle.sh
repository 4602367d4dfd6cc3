#!/usr/bin/env bash
# TCP idle: server memory (VmRSS) per idle connection, nbio against Boost.Asio and libuv.
#
# usage: bench/run_tcp_idle.sh [BUILD]            BUILD: the build directory (default: build)
#
# For every server: start it pinned to CPU 0, run tcp_idle pinned to CPU 1 (it samples the
# server's VmRSS, opens IDLE_CONNECTIONS connections, echoes one byte on each, lets them sit
# idle for SETTLE seconds and samples again), stop the server.
#   nbio        tcp_echo --loops 1 (non-blocking)
#   nbio_mixed  tcp_echo --loops 1 --io-mode mixed
#   asio, libuv bench/baselines/{asio,libuv}_echo
# A server whose binary is not built is skipped with a note.
#
# Environment: IDLE_CONNECTIONS (15000); SETTLE (2) seconds; SERVERS ("nbio nbio_mixed asio
# libuv"); PORT_BASE (19500); SERVER_CPU (0); LOAD_CPU (1).
#
# Output: a table of RSS before/after and bytes per connection; BUILD/bench/tcp_idle.json;
# logs in BUILD/bench/tcp_idle/.
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bin
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-15000}
SETTLE=${SETTLE:-2}
SERVERS=${SERVERS:-"nbio nbio_mixed asio libuv"}
PORT_BASE=${PORT_BASE:-19500}
OUT=$BUILD/bench
RUNS=$OUT/tcp_idle

# shellcheck source=server_control.sh source-path=SCRIPTDIR
source "$(dirname "$0")/server_control.sh"

if [ ! -x "$BIN/tcp_idle" ]; then
  echo "run_tcp_idle: $BIN/tcp_idle is not built (cmake --build $BUILD --target tcp_idle)" >&2
  exit 1
fi
mkdir -p "$RUNS"
rm -f "$RUNS"/*.json
warn_if_busy

failed=0
runs_json=()
echo "tcp_idle: $IDLE_CONNECTIONS idle connections, ${SETTLE}s settle; server on CPU $SERVER_CPU, client on CPU $LOAD_CPU"
for server in $SERVERS; do
  binary=$(server_binary "$server")
  if [ ! -x "$binary" ]; then
    echo "  $server: skipped ($binary not built)"
    runs_json+=("{\"server\": \"$server\", \"status\": \"skipped\", \"reason\": \"binary not built\"}")
    continue
  fi
  result=$RUNS/$server.json
  next_free_port
  server_command "$server" "$port"
  printf '  %-12s ... ' "$server"
  if ! start_server "$RUNS/$server.server.log" "${cmd[@]}"; then
    echo "did not start"
    runs_json+=("{\"server\": \"$server\", \"status\": \"failed\", \"reason\": \"server did not start\"}")
    failed=1
    continue
  fi
  status=ok
  run_load 120 "$BIN/tcp_idle" --host "$HOST" --port "$port" --server-pid "$server_pid" \
    --connections "$IDLE_CONNECTIONS" --settle "$SETTLE" \
    --json "$result" >/dev/null 2>"$RUNS/$server.client.log" || status=failed
  stop_server
  if [ ! -s "$result" ]; then
    echo "no result (see $RUNS/$server.client.log)"
    runs_json+=("{\"server\": \"$server\", \"status\": \"failed\", \"reason\": \"tcp_idle produced no result\"}")
    failed=1
    continue
  fi
  [ "$status" = ok ] || failed=1
  printf '%.0f bytes per connection%s\n' "$(json_num "$result" bytes_per_connection)" \
    "$([ "$status" = ok ] || echo " (failed: see $RUNS/$server.client.log)")"
  runs_json+=("{\"server\": \"$server\", \"status\": \"$status\", \"result\": $(cat "$result")}")
done

echo
printf '%-12s %12s %14s %13s %14s\n' server established rss_before_kb rss_after_kb bytes_per_conn
for server in $SERVERS; do
  result=$RUNS/$server.json
  if [ -s "$result" ]; then
    printf '%-12s %12s %14s %13s %14.0f\n' "$server" "$(json_num "$result" established)" \
      "$(json_num "$result" rss_before_kb)" "$(json_num "$result" rss_after_kb)" \
      "$(json_num "$result" bytes_per_connection)"
  else
    printf '%-12s %12s %14s %13s %14s\n' "$server" - - - -
  fi
done

join() { local IFS=,; echo "$*"; }
{
  echo "{"
  echo "  \"benchmark\": \"tcp_idle\", \"host\": \"$HOST\","
  echo "  \"connections\": $IDLE_CONNECTIONS, \"settle_s\": $SETTLE,"
  echo "  \"runs\": [$(join "${runs_json[@]}")]"
  echo "}"
} >"$OUT/tcp_idle.json"
echo
echo "wrote $OUT/tcp_idle.json"
exit "$failed"
