#!/usr/bin/env bash
# demo.sh BUILD_DIR: what `make demo` shows. Starts bin/tcp_echo on 127.0.0.1 (a free port),
# opens CONNECTIONS connections to it with bin/tcp_client (one echo each), holds them
# HOLD_SECONDS, and reports the server's RSS growth per connection and the echo round trip.
#
#   CONNECTIONS   connections to open (default 15000)
#   HOLD_SECONDS  how long the client holds them (default 10)
#   TRAFFIC_SECONDS  echo traffic over TRAFFIC_CONNECTIONS of them at the end of the hold
#                    (default 5 s over 1,000: one 12-byte message in flight on each)
#
# Server and client are separate processes, so each stays under the 20,000 open-files hard
# limit. On 2 cores the default run takes about 20 s. Exits 0 when every connection was
# established and echoed; stops everything it started on any exit.
set -euo pipefail

build_dir=${1:-build}
bin=$build_dir/bin
connections=${CONNECTIONS:-15000}
hold_seconds=${HOLD_SECONDS:-10}
traffic_seconds=${TRAFFIC_SECONDS:-5}
traffic_connections=${TRAFFIC_CONNECTIONS:-1000}

for program in tcp_echo tcp_client; do
  if [ ! -x "$bin/$program" ]; then
    echo "demo: $bin/$program not found: run 'make build' first" >&2
    exit 1
  fi
done

# The programs raise their own soft limit too; this covers anything else started here.
fd_limit=$(ulimit -Hn)
ulimit -n "$fd_limit"
# Each process holds one fd per connection plus a few of its own.
if [ "$fd_limit" != unlimited ] && [ "$connections" -gt $((fd_limit - 100)) ]; then
  echo "demo: CONNECTIONS=$connections is above what the open-files hard limit ($fd_limit)" \
    "allows per process; use at most $((fd_limit - 100))" >&2
  exit 1
fi

work=$(mktemp -d /tmp/nbio-demo.XXXXXX)
server_pid=
client_pid=
cleanup() {
  for pid in $client_pid $server_pid; do
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

"$bin/tcp_echo" --host 127.0.0.1 --port 0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
if ! listening=$(wait_for_line "$work/server.out" '^listening on ' 10); then
  echo "demo: tcp_echo did not start listening" >&2
  cat "$work/server.err" >&2
  exit 1
fi
port=${listening##*:}
echo "demo: tcp_echo (pid $server_pid) $listening"

# Warm-up: a few connections first touch the loops' read buffers and first slab pages, which
# every later connection shares; the baseline is taken after them.
"$bin/tcp_client" --host 127.0.0.1 --port "$port" --connections 64 >/dev/null 2>&1 || {
  echo "demo: warm-up connections to tcp_echo failed" >&2
  exit 1
}
sleep 0.5
rss_before=$(rss_kb "$server_pid")
echo "demo: server RSS before: $rss_before kB (after a 64-connection warm-up)"
echo "demo: opening $connections connections, holding them ${hold_seconds}s"

"$bin/tcp_client" --host 127.0.0.1 --port "$port" --connections "$connections" \
  --hold-seconds "$hold_seconds" --traffic-seconds "$traffic_seconds" \
  --traffic-window "$traffic_connections" >"$work/client.out" &
client_pid=$!

# Sample the server while the connections are held: after the client says so, let the loops
# settle a second, then take the largest of a few samples.
rss_held=
if wait_for_line "$work/client.out" '^holding ' 150 >/dev/null; then
  sleep 1
  rss_held=0
  for _ in 1 2 3; do
    sample=$(rss_kb "$server_pid")
    [ "$sample" -gt "$rss_held" ] && rss_held=$sample
    sleep 0.5
  done
fi

client_status=0
wait "$client_pid" || client_status=$?
client_pid=
cat "$work/client.out"

kill -INT "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=
cat "$work/server.err" >&2

# Figures from the client's summary table.
established=$(awk '/^  connections established/ {print $3}' "$work/client.out")
p50=$(awk '/^  echo rtt p50/ {print $4 " " $5}' "$work/client.out")
p99=$(awk '/^  echo rtt p99/ {print $4 " " $5}' "$work/client.out")
msgs=$(awk '/^  traffic msgs\/s/ {print $3}' "$work/client.out")
tp50=$(awk '/^  traffic rtt p50/ {print $4 " " $5}' "$work/client.out")
tp99=$(awk '/^  traffic rtt p99/ {print $4 " " $5}' "$work/client.out")

echo
echo "demo summary"
printf '  %-34s %s\n' "connections established" "${established:-0} of $connections"
if [ -n "$rss_held" ] && [ "${established:-0}" -gt 0 ]; then
  growth=$(((rss_held - rss_before) * 1024 / established))
  printf '  %-34s %s\n' "server RSS before / held" "$rss_before kB / $rss_held kB"
  printf '  %-34s %s\n' "server RSS growth per connection" "$growth bytes"
else
  printf '  %-34s %s\n' "server RSS growth per connection" "not measured (no hold phase)"
fi
printf '  %-34s %s\n' "first echo round trip p50 / p99" "${p50:-n/a} / ${p99:-n/a}"
if [ -n "$msgs" ]; then
  printf '  %-34s %s\n' "echo traffic ($traffic_connections conns)" "$msgs msgs/s"
  printf '  %-34s %s\n' "traffic round trip p50 / p99" "${tp50:-n/a} / ${tp99:-n/a}"
fi

if [ "$client_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
  echo "demo: FAILED (tcp_client exit $client_status, tcp_echo exit $server_status)" >&2
  exit 1
fi
echo "demo: ok"
