#!/usr/bin/env bash
# TLS idle: server memory (VmRSS) per idle TLS connection against the same server without TLS,
# and what OpenSSL keeps of it per connection.
#
# usage: bench/tls/run_tls_idle.sh [BUILD]        BUILD: the build directory (default: build)
#
# For plain and tls: start BUILD/bin/tcp_echo --loops 1 (tls: with --tls-cert/--tls-key, a
# self-signed certificate made here) pinned to CPU 0; warm it up with WARMUP_CONNECTIONS
# connections opened the same way, held a moment and closed (so that the heap already holds
# what CONNECT_WINDOW handshakes in flight need at once: a fixed cost, not a per-connection
# one); then nbio-load --mode idle --ramp-first pinned to CPU 1 (tls: --tls --tls-insecure, a
# full TLS 1.3 handshake per connection): it samples the server's VmRSS before its first
# connect, opens IDLE_CONNECTIONS connections
# (CONNECT_WINDOW in flight at a time, so few handshakes are half done at once), holds them
# SETTLE seconds and reports (peak - start) / connections; stop the server. The difference
# tls - plain is what TLS costs an idle connection (issue 15's target: at most 256 bytes, with
# TLS 1.3 connections on nbio's record layer; TLS_HANDOFF=0 keeps them on OpenSSL).
# Then BUILD/bench/tls_idle/ssl_mem (bench/tls/ssl_mem.cpp, compiled here) handshakes
# SSL_MEM_CONNECTIONS connections in memory with nbio's server settings and counts what
# OpenSSL's allocator holds per idle server connection, by call site: the part of the
# difference that is OpenSSL's own. Those heap bytes are what glibc's chunks take for OpenSSL's
# requests; the rest of the difference is nbio's (16 bytes of slot) and heap left over from the
# handshakes' transient allocations.
# With gdb installed, the script also looks into the server's heap: glibc's malloc_stats() once
# the server listens and again once it holds every connection (bytes in use: live allocations;
# system bytes: the heap's size, free chunks included), then malloc_trim(0) and VmRSS again:
# in use / connection is what the connections' allocations take, system - in use is free heap
# the handshakes left behind (fragmentation glibc keeps resident), and the RSS after the trim
# is what the server needs once that is handed back.
#
# Environment: IDLE_CONNECTIONS (15000); WARMUP_CONNECTIONS (256); SETTLE (5) seconds (long
# enough for gdb to attach); CONNECT_WINDOW (64); TLS_HANDOFF (1); CERT (ecdsa,
# or rsa); ROUNDS (1); SSL_MEM_CONNECTIONS (1000); NICE (0); PORT_BASE (19950);
# SERVER_CPU (0); LOAD_CPU (1); CXX (c++).
#
# Output: a table of RSS start/peak and bytes per connection, the difference and the OpenSSL
# breakdown; BUILD/bench/tls_idle.json; logs in BUILD/bench/tls_idle/.
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bin
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-15000}
WARMUP_CONNECTIONS=${WARMUP_CONNECTIONS:-256}
TLS_HANDOFF=${TLS_HANDOFF:-1}
SETTLE=${SETTLE:-5}
CONNECT_WINDOW=${CONNECT_WINDOW:-64}
CERT=${CERT:-ecdsa}
ROUNDS=${ROUNDS:-1}
SSL_MEM_CONNECTIONS=${SSL_MEM_CONNECTIONS:-1000}
PORT_BASE=${PORT_BASE:-19950}
CXX=${CXX:-c++}
OUT=$BUILD/bench
RUNS=$OUT/tls_idle
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=../server_control.sh source-path=SCRIPTDIR
source "$here/../server_control.sh"

# NICE: run the server and the load at this nice value (root: -19) so that other work on a
# shared machine takes less of their cores; both servers get the same. With autogroup
# scheduling (kernel.sched_autogroup_enabled) a nice value weighs only within its session's
# group, so the session's group gets it too (/proc/self/autogroup): other sessions' work then
# waits while the benchmark runs.
if [ "${NICE:-0}" != 0 ]; then
  pin_server=(nice -n "$NICE" "${pin_server[@]}")
  pin_load=(nice -n "$NICE" "${pin_load[@]}")
  if [ -w /proc/self/autogroup ]; then echo "$NICE" >/proc/self/autogroup 2>/dev/null || true; fi
fi

scratch=$(mktemp -d /tmp/nbio-bench-tls-idle.XXXXXX)
probe_pid=""
trap '[ -z "$probe_pid" ] || kill "$probe_pid" 2>/dev/null; stop_all; rm -rf "$scratch"' EXIT

for b in tcp_echo nbio-load; do
  if [ ! -x "$BIN/$b" ]; then
    echo "run_tls_idle: $BIN/$b is not built (cmake --build $BUILD --target $b)" >&2
    exit 1
  fi
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNECTIONS + 64)) ]; then
  echo "run_tls_idle: open-files limit $(ulimit -n) is too low for $IDLE_CONNECTIONS connections" >&2
  exit 1
fi
mkdir -p "$RUNS"
rm -f "$RUNS"/*.json "$RUNS"/*.log
warn_if_busy

case $CERT in
  ecdsa) keyspec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
  rsa) keyspec=(-newkey rsa:2048) ;;
  *) echo "run_tls_idle: CERT is ecdsa or rsa" >&2; exit 2 ;;
esac
openssl req -x509 "${keyspec[@]}" -nodes -days 30 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$scratch/server.key" -out "$scratch/server.pem" >/dev/null 2>&1

vmrss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo 0; }

# malloc_stats: glibc's stats printed into the server's log (gdb), the last "Total" block of
# LOG as "SYSTEM_BYTES IN_USE_BYTES".
malloc_stats() {
  gdb -p "$server_pid" -batch -ex 'call (void)malloc_stats()' "$@" >/dev/null 2>&1 || true
}
last_total() {
  awk '/^Total/ { t = 1; next } t && /system bytes/ { s = $NF } t && /in use bytes/ { u = $NF; t = 0 }
    END { if (s != "") print s, u }' "$1"
}

# heap_probe NAME: in the background while the client holds: once the server has
# IDLE_CONNECTIONS established, "RSS_HELD_KIB RSS_TRIMMED_KIB" into RUNS/NAME.heap, with
# malloc_stats in the server's log in between.
heap_probe() {
  local name=$1 waited=0
  while [ "$(ss -Htn state established "sport = :$port" 2>/dev/null | wc -l)" -lt "$IDLE_CONNECTIONS" ]; do
    kill -0 "$server_pid" 2>/dev/null && [ "$waited" -lt 1200 ] || return 0
    sleep 0.5
    waited=$((waited + 1))
  done
  local held
  held=$(vmrss_kib)
  malloc_stats -ex 'call (int)malloc_trim(0)'
  echo "$held $(vmrss_kib)" >"$RUNS/$name.heap"
}
have_gdb=0
command -v gdb >/dev/null && have_gdb=1

failed=0
runs_json=()
echo "tls_idle: $IDLE_CONNECTIONS idle connections ($CERT certificate), ${SETTLE}s held, $CONNECT_WINDOW connects in flight; server on CPU $SERVER_CPU, client on CPU $LOAD_CPU"
for round in $(seq "$ROUNDS"); do
  for variant in plain tls; do
    name=$variant-r$round
    server_args=()
    client_args=()
    if [ "$variant" = tls ]; then
      server_args=(--tls-cert "$scratch/server.pem" --tls-key "$scratch/server.key")
      [ "$TLS_HANDOFF" = 1 ] || server_args+=(--tls-no-handoff)
      client_args=(--tls --tls-insecure)
    fi
    next_free_port
    printf '  round %s %-6s ... ' "$round" "$variant"
    if ! start_server "$RUNS/$name.server.log" "$BIN/tcp_echo" --host "$HOST" --port "$port" \
      --loops 1 "${server_args[@]}"; then
      echo "did not start"
      runs_json+=("{\"variant\": \"$variant\", \"round\": $round, \"status\": \"failed\", \"reason\": \"server did not start\"}")
      failed=1
      continue
    fi
    if [ "$WARMUP_CONNECTIONS" -gt 0 ]; then
      run_load 120 "$BIN/nbio-load" --mode idle --host "$HOST" --port "$port" \
        -c "$WARMUP_CONNECTIONS" --connect-window "$CONNECT_WINDOW" --ramp-first -d 0.2 \
        --loops 1 "${client_args[@]}" >"$RUNS/$name.warmup.log" 2>&1 || true
      sleep 0.5  # the server closes them
    fi
    loadavg=$(cut -d' ' -f1 /proc/loadavg)
    status=ok
    if [ "$have_gdb" = 1 ]; then
      malloc_stats  # the baseline, before the first connect
      heap_probe "$name" &
      probe_pid=$!
    fi
    run_load 600 "$BIN/nbio-load" --mode idle --host "$HOST" --port "$port" \
      -c "$IDLE_CONNECTIONS" --connect-window "$CONNECT_WINDOW" --ramp-first -d "$SETTLE" \
      --loops 1 --server-pid "$server_pid" "${client_args[@]}" --json "$RUNS/$name.json" \
      >"$RUNS/$name.client.log" 2>&1 || status=failed
    if [ -n "$probe_pid" ]; then
      kill "$probe_pid" 2>/dev/null || true
      wait "$probe_pid" 2>/dev/null || true
      probe_pid=""
    fi
    stop_server
    # The heap: in use and system bytes at the start and while held (malloc_stats blocks 1, 2).
    heap_json=""
    if [ -s "$RUNS/$name.heap" ]; then
      read -r sys0 use0 <<<"$(awk '/^Total/ { t = 1; next } t && /system bytes/ { s = $NF }
        t && /in use bytes/ { print s, $NF; t = 0; exit }' "$RUNS/$name.server.log")"
      read -r sys1 use1 <<<"$(last_total "$RUNS/$name.server.log")"
      read -r held trimmed <<<"$(cat "$RUNS/$name.heap")"
      start_kib=$(json_num "$RUNS/$name.json" rss_start_kib)
      if [ -n "$sys0" ] && [ -n "$sys1" ] && [ -n "$start_kib" ]; then
        heap_json=$(awk -v n="$IDLE_CONNECTIONS" -v s0="$sys0" -v u0="$use0" -v s1="$sys1" \
          -v u1="$use1" -v h="$held" -v t="$trimmed" -v r0="$start_kib" 'BEGIN {
          printf "\"heap_in_use_per_conn\": %.0f, \"heap_free_per_conn\": %.0f, ", (u1 - u0) / n, ((s1 - u1) - (s0 - u0)) / n
          printf "\"rss_held_kib\": %d, \"rss_trimmed_kib\": %d, ", h, t
          printf "\"rss_held_per_conn\": %.0f, \"rss_trimmed_per_conn\": %.0f", 1024 * (h - r0) / n, 1024 * (t - r0) / n }')
      fi
    fi
    result=$RUNS/$name.json
    if [ ! -s "$result" ]; then
      echo "no result (see $RUNS/$name.client.log)"
      runs_json+=("{\"variant\": \"$variant\", \"round\": $round, \"status\": \"failed\", \"reason\": \"nbio-load produced no result\"}")
      failed=1
      continue
    fi
    [ "$status" = ok ] || failed=1
    printf '%s established, %.0f bytes per connection, load avg %s%s\n' \
      "$(json_num "$result" established)" "$(json_num "$result" rss_per_conn_bytes)" "$loadavg" \
      "$([ "$status" = ok ] || echo " (failed: see $RUNS/$name.client.log)")"
    [ -z "$heap_json" ] || echo "{$heap_json}" >"$RUNS/$name.heap.json"
    runs_json+=("{\"variant\": \"$variant\", \"round\": $round, \"status\": \"$status\", \"loadavg\": $loadavg, \"established\": $(json_num "$result" established), \"rss_start_kib\": $(json_num "$result" rss_start_kib), \"rss_peak_kib\": $(json_num "$result" rss_peak_kib), \"bytes_per_connection\": $(json_num "$result" rss_per_conn_bytes)${heap_json:+, $heap_json}}")
  done
done

# median VARIANT: of bytes per connection over the rounds.
median() {
  local values=() r v
  for r in $(seq "$ROUNDS"); do
    v=$(json_num "$RUNS/$1-r$r.json" rss_per_conn_bytes)
    [ -n "$v" ] && values+=("$v")
  done
  [ ${#values[@]} -gt 0 ] || return 0
  printf '%s\n' "${values[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo
printf '%-6s %5s %12s %14s %13s %14s\n' variant round established rss_start_kib rss_peak_kib bytes_per_conn
for round in $(seq "$ROUNDS"); do
  for variant in plain tls; do
    r=$RUNS/$variant-r$round.json
    if [ -s "$r" ]; then
      printf '%-6s %5s %12s %14s %13s %14.0f\n' "$variant" "$round" "$(json_num "$r" established)" \
        "$(json_num "$r" rss_start_kib)" "$(json_num "$r" rss_peak_kib)" \
        "$(json_num "$r" rss_per_conn_bytes)"
    fi
  done
done
plain=$(median plain)
tls=$(median tls)
diff=""
if [ -n "$plain" ] && [ -n "$tls" ]; then
  diff=$(awk -v a="$tls" -v b="$plain" 'BEGIN { printf "%.0f", a - b }')
  printf '\nTLS costs %s bytes per idle connection over plain (%.0f vs %.0f; target <= 256: %s)\n' \
    "$diff" "$tls" "$plain" "$([ "$diff" -le 256 ] && echo met || echo missed)"
fi
if ls "$RUNS"/*.heap.json >/dev/null 2>&1; then
  echo
  echo "the server's heap per connection (glibc malloc_stats, gdb), and RSS after malloc_trim(0):"
  printf '%-6s %5s %14s %14s %14s %16s\n' variant round heap_in_use heap_free rss_held rss_after_trim
  for round in $(seq "$ROUNDS"); do
    for variant in plain tls; do
      h=$RUNS/$variant-r$round.heap.json
      [ -s "$h" ] || continue
      printf '%-6s %5s %14s %14s %14s %16s\n' "$variant" "$round" \
        "$(json_num "$h" heap_in_use_per_conn)" "$(json_num "$h" heap_free_per_conn)" \
        "$(json_num "$h" rss_held_per_conn)" "$(json_num "$h" rss_trimmed_per_conn)"
    done
  done
fi

# What OpenSSL keeps per idle server connection.
mem_json=null
if "$CXX" -std=c++20 -O2 "$here/ssl_mem.cpp" -o "$RUNS/ssl_mem" -lssl -lcrypto 2>"$RUNS/ssl_mem.build.log"; then
  echo
  if "${pin_load[@]}" "$RUNS/ssl_mem" --cert "$scratch/server.pem" --key "$scratch/server.key" \
    --connections "$SSL_MEM_CONNECTIONS" --json "$RUNS/ssl_mem.json"; then
    mem_json=$(cat "$RUNS/ssl_mem.json")
    heap=$(json_num "$RUNS/ssl_mem.json" idle_heap_bytes)
    if [ -n "$diff" ] && [ "$diff" -gt "$heap" ]; then
      printf '\nof the %s bytes: OpenSSL holds %s (heap chunks), the rest (%s) is nbio'"'"'s slot and heap left by the handshakes\n' \
        "$diff" "$heap" "$((diff - heap))"
    elif [ -n "$diff" ]; then
      printf '\nof the %s bytes: OpenSSL alone holds %s (heap chunks, with ssl_mem'"'"'s settings): all of it\n' \
        "$diff" "$heap"
    fi
  else
    echo "ssl_mem failed" >&2
    failed=1
  fi
else
  echo "run_tls_idle: ssl_mem did not build (see $RUNS/ssl_mem.build.log)" >&2
  failed=1
fi

join() { local IFS=,; echo "$*"; }
{
  echo "{"
  echo "  \"benchmark\": \"tls_idle\", \"host\": \"$HOST\", \"cert\": \"$CERT\","
  echo "  \"connections\": $IDLE_CONNECTIONS, \"settle_s\": $SETTLE, \"connect_window\": $CONNECT_WINDOW, \"rounds\": $ROUNDS,"
  echo "  \"runs\": [$(join "${runs_json[@]}")],"
  echo "  \"plain_bytes_per_connection\": ${plain:-null}, \"tls_bytes_per_connection\": ${tls:-null},"
  echo "  \"tls_minus_plain_bytes\": ${diff:-null}, \"target_bytes\": 256, \"tls_handoff\": $TLS_HANDOFF, \"warmup_connections\": $WARMUP_CONNECTIONS,"
  echo "  \"openssl_per_connection\": $mem_json"
  echo "}"
} >"$OUT/tls_idle.json"
echo
echo "wrote $OUT/tls_idle.json"
exit "$failed"
