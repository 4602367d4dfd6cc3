#!/usr/bin/env bash
# demo.sh BUILD_DIR: what `make demo` shows. Starts bin/ws_echo on 127.0.0.1 (a free port, its
# default loops, WebSocket route /ws), then bin/nbio-load ramps to CONNECTIONS WebSocket
# connections to it in ws-echo mode (each sends its upgrade on open) and echoes IN_FLIGHT
# messages of SIZE bytes (one binary frame each) over them for DURATION seconds, sampling the
# server's RSS and CPU (--server-pid). Live progress and nbio-load's table go to the terminal;
# the JSON result and an SVG plot (connections up and server RSS, msgs/s, over time) go to
# BUILD_DIR/demo/report.json and BUILD_DIR/demo/report.svg. A summary ends the run.
#
#   MODE         ws: WebSocket, ws_echo and nbio-load --mode ws-echo (default);
#                tcp: plain TCP, tcp_echo and nbio-load --mode tcp-echo (the demo before issue 5)
#   CONNECTIONS  connections to open (default 15000)
#   DURATION     seconds from the first connect to the end of the echo phase (default 10)
#   IN_FLIGHT    messages in flight in all, spread over the connections (default 1000)
#   SIZE         bytes per message (default 64)
#
# nbio-load uses one worker process per 18,000 connections, so each stays under the 20,000
# open-files hard limit; the server holds them all in one process up to that limit. A larger
# CONNECTIONS (up to a million) runs bench/million/run.sh instead, in the same MODE: server
# worker processes, the connections opened first, then DURATION seconds of echo. On 2 cores the
# default run takes about 15 s. Exits 0 when every connection was established and kept; stops
# everything it started on any exit.
set -euo pipefail

build_dir=${1:-build}
bin=$build_dir/bin
out_dir=$build_dir/demo
mode=${MODE:-ws}
connections=${CONNECTIONS:-15000}
duration=${DURATION:-10}
in_flight=${IN_FLIGHT:-1000}
size=${SIZE:-64}
per_process=18000
case $mode in
  ws) server=ws_echo load_args=(--mode ws-echo --path /ws) ;;
  tcp) server=tcp_echo load_args=(--mode tcp-echo) ;;
  *)
    echo "demo: MODE=$mode: expected ws or tcp" >&2
    exit 2
    ;;
esac

for program in $server nbio-load; do
  if [ ! -x "$bin/$program" ]; then
    echo "demo: $bin/$program not found: run 'make demo' (it builds them)" >&2
    exit 1
  fi
done

# The programs raise their own soft limit too; this covers anything else started here.
fd_limit=$(ulimit -Hn)
ulimit -n "$fd_limit"
# The server holds one fd per connection plus a few of its own. Past that, the demo becomes the
# million benchmark's setup: server worker processes (tcp_echo on 100 ports, ws_echo on one),
# nbio-load --ramp-first.
if [ "$fd_limit" != unlimited ] && [ "$connections" -gt $((fd_limit - 100)) ]; then
  echo "demo: $connections connections are more than one server process may hold (open-files" \
    "limit $fd_limit): running MODE=$mode bench/million/run.sh ($server --workers, report in" \
    "$build_dir/million/)"
  MODE=$mode CONNECTIONS=$connections DURATION=$duration IN_FLIGHT=$in_flight SIZE=$size \
    exec bash "$(dirname "$0")/../bench/million/run.sh" "$build_dir"
fi
processes=$(((connections + per_process - 1) / per_process))
[ "$in_flight" -gt "$connections" ] && in_flight=$connections

mkdir -p "$out_dir"
rm -f "$out_dir/report.json" "$out_dir/report.svg"
work=$(mktemp -d /tmp/nbio-demo.XXXXXX)
server_pid=
load_pid=
cleanup() {
  for pid in $load_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# VmRSS of a process in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# The first number for "KEY": in nbio-load's (indented, one key a line) JSON report $1.
json_num() {
  awk -v key="\"$2\":" '$1 == key {gsub(/[ ,]/, "", $2); print $2; exit}' "$1"
}

# Waits up to $3 seconds for a line matching $2 in file $1; prints the line.
wait_for_line() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3)) line
  while [ $SECONDS -le $deadline ]; do
    if line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

"$bin/$server" --host 127.0.0.1 --port 0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
if ! listening=$(wait_for_line "$work/server.out" '^listening on ' 10); then
  echo "demo: $server did not start listening" >&2
  cat "$work/server.err" >&2
  exit 1
fi
port=${listening##*:}
echo "demo: $server (pid $server_pid) $listening"

# Warm-up: a few connections first touch the loops' read buffers and first slab pages, which
# every later connection shares; the baseline is taken after them.
"$bin/nbio-load" "${load_args[@]}" --port "$port" -c 64 -d 1 -s "$size" --json /dev/null \
  >/dev/null 2>&1 || {
  echo "demo: warm-up connections to $server failed" >&2
  exit 1
}
sleep 0.5
rss_before=$(rss_kb "$server_pid")
echo "demo: server RSS before: $rss_before kB (after a 64-connection warm-up)"
echo "demo: nbio-load: $connections $mode connections in $processes process(es)," \
  "$in_flight x $size-byte messages in flight, ${duration}s"

# nbio-load's live line and table go to the terminal (stderr); the JSON to report.json.
load_status=0
"$bin/nbio-load" "${load_args[@]}" --port "$port" -c "$connections" --processes "$processes" \
  --in-flight "$in_flight" -s "$size" -d "$duration" --server-pid "$server_pid" \
  --json "$out_dir/report.json" --plot "$out_dir/report.svg" &
load_pid=$!
wait "$load_pid" || load_status=$?
load_pid=

kill -INT "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=
cat "$work/server.err" >&2

# Figures from nbio-load's JSON report.
report=$out_dir/report.json
established=0 msgs='' p50='' p99='' rss_peak='' rss_per_conn=''
if [ -s "$report" ]; then
  established=$(json_num "$report" established)
  msgs=$(json_num "$report" msgs_per_s)
  p50=$(json_num "$report" p50)
  p99=$(json_num "$report" p99)
  rss_peak=$(json_num "$report" rss_peak_kib)
  rss_per_conn=$(json_num "$report" rss_per_conn_bytes)
fi

echo
echo "demo summary"
printf '  %-34s %s\n' "connections established" "${established:-0} of $connections"
if [ -n "$rss_peak" ] && [ "${established:-0}" -gt 0 ]; then
  growth=$(((rss_peak - rss_before) * 1024 / established))
  printf '  %-34s %s\n' "server RSS before / held (peak)" "$rss_before kB / $rss_peak kB"
  printf '  %-34s %s\n' "server RSS growth per connection" "$growth bytes"
  [ -n "$rss_per_conn" ] &&
    printf '  %-34s %.0f bytes\n' "  (nbio-load's own figure)" "$rss_per_conn"
else
  printf '  %-34s %s\n' "server RSS growth per connection" "not measured"
fi
if [ "$mode" = ws ]; then
  # ws_echo counts its upgrades on stderr as it stops; 64 of them are the warm-up's.
  upgraded=$(awk '/connections upgraded/ {n += $(NF - 2)} END {print n + 0}' "$work/server.err")
  printf '  %-34s %s\n' "WebSocket upgrades (server count)" \
    "$((upgraded > 64 ? upgraded - 64 : 0)) of $connections (+64 warm-up)"
fi
[ -n "$msgs" ] && printf '  %-34s %.0f msgs/s\n' "echo ($in_flight in flight, $size B)" "$msgs"
[ -n "$p50" ] && printf '  %-34s %.3f ms / %.3f ms\n' "echo round trip p50 / p99" "$p50" "$p99"
printf '  %-34s %s\n' "report" "$report"
if [ -s "$out_dir/report.svg" ]; then
  printf '  %-34s %s\n' "plot" "$out_dir/report.svg"
fi

if [ "$load_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
  echo "demo: FAILED (nbio-load exit $load_status, $server exit $server_status)" >&2
  exit 1
fi
echo "demo: ok"
