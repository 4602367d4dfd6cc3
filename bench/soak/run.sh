#!/usr/bin/env bash
# bench/soak/run.sh BUILD_DIR: ten minutes of churning and long-lived echo connections, plain and
# TLS at once, every echoed byte checked, the servers' memory and descriptors watched for a leak
# (what `make soak` runs).
#
#   1. Makes a throwaway ECDSA P-256 certificate for 127.0.0.1 (openssl req) in a temp directory.
#   2. Starts bin/tcp_echo twice on 127.0.0.1: plain on BASE_PORT and TLS (--tls-cert/--tls-key)
#      on BASE_PORT+1, each with LOOPS event loops, and waits for their "listening on" lines.
#   3. Runs bin/soak_client for DURATION seconds: CHURN slots that connect, send CHURN_MESSAGES
#      messages (the next CHURN_INTERVAL_MS after each reply), close and connect again, and HOLD
#      connections that echo a message every HOLD_INTERVAL_MS all the run; TLS_PERCENT of each
#      group on the TLS server (verified against the certificate). Message sizes vary from 1 to
#      MAX_SIZE bytes and every connection sends its own byte pattern, checked on receipt. It
#      samples both servers' VmRSS and /proc/PID/fd once a second and prints a line every
#      PROGRESS seconds. Warm-up ends after WARMUP seconds once both groups are at full strength;
#      RSS after warm-up and at the end are means over WINDOW seconds. Then the churn stops, the
#      hold connections close and the servers' descriptors must return to their baseline.
#   4. Stops the servers (SIGTERM: each prints its counters and must exit 0), draws
#      OUT_DIR/soak.svg (RSS, descriptors, connections over time) with gnuplot.
#
# Writes OUT_DIR/report.json (options, summary, every sample), samples.dat, soak.svg and the
# servers' logs. Fails when a server's RSS at the end is more than MAX_DRIFT percent above its RSS
# after warm-up, when its descriptors end more than FD_SLACK above their baseline, when any byte
# comes back wrong, or when a connect fails or a connection closes unexpectedly.
#
# Environment (defaults):
#   DURATION 600 (seconds of load, warm-up included)   WARMUP DURATION/10, at least 20   WINDOW 10
#   CHURN 5000   HOLD 5000   TLS_PERCENT 50   CHURN_MESSAGES 4   CHURN_INTERVAL_MS 500
#   HOLD_INTERVAL_MS 1000   MAX_SIZE 8192   RAMP_RATE 2000 (first connects/s)
#   MAX_DRIFT 5 (percent)   FD_SLACK 8   LOOPS 1 (per server)   CLIENT_LOOPS 1   PROGRESS 5
#   BASE_PORT 22000   OUT_DIR BUILD_DIR/soak
#   SERVER_BIN the echo server to run (default BUILD_DIR/bin/tcp_echo; e.g. one built with
#              -DNBIO_SANITIZE=address,undefined, with MAX_DRIFT raised: ASan's quarantine grows)
#
# Exit status: 0 when every check passed; 1 when one failed (the lines above the exit say which);
# 2 when the run cannot start (programs missing, ports in use, the open-files limit too low).
set -euo pipefail

build_dir=${1:-build}
bin=$build_dir/bin
out_dir=${OUT_DIR:-$build_dir/soak}
duration=${DURATION:-600}
warmup=${WARMUP:-$((duration / 10 > 20 ? duration / 10 : 20))}
window=${WINDOW:-10}
churn=${CHURN:-5000}
hold=${HOLD:-5000}
base_port=${BASE_PORT:-22000}
loops=${LOOPS:-1}
server_bin=${SERVER_BIN:-$bin/tcp_echo}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for program in "$server_bin" "$bin/soak_client"; do
  if [ ! -x "$program" ]; then
    echo "soak: $program not found: run 'make soak' (it builds both)" >&2
    exit 2
  fi
done
for tool in openssl gnuplot ss; do
  if ! command -v $tool >/dev/null; then
    echo "soak: $tool not found (scripts/deps.sh installs it)" >&2
    exit 2
  fi
done
# One client process holds both groups, and each server up to all of them.
fd_hard=$(ulimit -Hn)
[ "$fd_hard" = unlimited ] && fd_hard=1048576
if [ $((churn + hold + 64)) -gt "$fd_hard" ]; then
  echo "soak: CHURN + HOLD = $((churn + hold)) connections need more descriptors than the" \
    "open-files limit ($fd_hard) allows one process" >&2
  exit 2
fi
ulimit -n "$fd_hard"
busy=$(ss -Hltn "( sport = :$base_port or sport = :$((base_port + 1)) )" | wc -l)
if [ "$busy" -gt 0 ]; then
  echo "soak: ports $base_port and $((base_port + 1)) must be free (set BASE_PORT)" >&2
  exit 2
fi

mkdir -p "$out_dir"
rm -f "$out_dir"/{report.json,samples.dat,soak.svg,plain.log,tls.log}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nbio-soak.XXXXXX")
plain_pid=
tls_pid=
client_pid=
cleanup() {
  for pid in $client_pid $plain_pid $tls_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the certificate -----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>"$tmp/openssl.log" || {
  cat "$tmp/openssl.log" >&2
  exit 2
}

# --- 2. the servers ---------------------------------------------------------------------------
"$server_bin" --host 127.0.0.1 --port "$base_port" --loops "$loops" \
  >"$out_dir/plain.log" 2>&1 &
plain_pid=$!
"$server_bin" --host 127.0.0.1 --port "$((base_port + 1))" --loops "$loops" \
  --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" >"$out_dir/tls.log" 2>&1 &
tls_pid=$!
deadline=$((SECONDS + 20))
for log in plain tls; do
  until grep -q "^listening on" "$out_dir/$log.log"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "soak: the $log tcp_echo did not start:" >&2
      tail -5 "$out_dir/$log.log" >&2
      exit 1
    fi
    sleep 0.1
  done
done
echo "soak: ${duration}s, $churn churning + $hold long-lived connections," \
  "${TLS_PERCENT:-50}% of each on TLS; tcp_echo plain pid $plain_pid (port $base_port)," \
  "TLS pid $tls_pid (port $((base_port + 1))), $loops loop(s) each; warm-up ${warmup}s"

# --- 3. the load ------------------------------------------------------------------------------
client_status=0
"$bin/soak_client" --plain-port "$base_port" --tls-port "$((base_port + 1))" \
  --tls-ca "$tmp/cert.pem" --server "plain=$plain_pid" --server "tls=$tls_pid" \
  --churn "$churn" --hold "$hold" --tls-percent "${TLS_PERCENT:-50}" \
  --churn-messages "${CHURN_MESSAGES:-4}" --churn-interval-ms "${CHURN_INTERVAL_MS:-500}" \
  --hold-interval-ms "${HOLD_INTERVAL_MS:-1000}" --max-size "${MAX_SIZE:-8192}" \
  --ramp-rate "${RAMP_RATE:-2000}" --loops "${CLIENT_LOOPS:-1}" \
  -d "$duration" --warmup "$warmup" --window "$window" --progress "${PROGRESS:-5}" \
  --max-drift "${MAX_DRIFT:-5}" --fd-slack "${FD_SLACK:-8}" \
  --json "$out_dir/report.json" --data "$out_dir/samples.dat" &
client_pid=$!
wait "$client_pid" || client_status=$?
client_pid=

# --- 4. the servers' counters, the plot -------------------------------------------------------
server_status=0
for name in plain tls; do
  pid_var=${name}_pid
  kill -TERM "${!pid_var}"
  status=0
  wait "${!pid_var}" || status=$?
  printf -v "$pid_var" '%s' ""
  sed -n 's/^tcp_echo: /  tcp_echo '"$name"': /p' "$out_dir/$name.log"
  if [ "$status" -ne 0 ]; then
    echo "soak: FAILED: the $name tcp_echo exited with status $status; the end of its log:" >&2
    tail -20 "$out_dir/$name.log" | sed 's/^/    /' >&2
    server_status=1
  fi
done
plot_status=0
if [ -s "$out_dir/samples.dat" ]; then
  warm=$(awk '$2 == "warmup_end_s" {print $3; exit}' "$out_dir/samples.dat")
  load_end=$(awk '$2 == "load_end_s" {print $3; exit}' "$out_dir/samples.dat")
  title="make soak: $churn churning + $hold long-lived connections, ${TLS_PERCENT:-50}% TLS"
  if gnuplot -e "data='$out_dir/samples.dat'; out='$out_dir/soak.svg'; title='$title';" \
    -e "warm=$warm; load_end=$load_end" "$here/plot.gp" 2>"$tmp/gnuplot.log"; then
    echo "soak: report $out_dir/report.json, plot $out_dir/soak.svg"
  else
    echo "soak: the plot failed: $(tail -1 "$tmp/gnuplot.log")" >&2
    plot_status=1
  fi
fi

if [ "$client_status" -ne 0 ] || [ "$server_status" -ne 0 ] || [ "$plot_status" -ne 0 ]; then
  echo "soak: FAILED (soak_client exit $client_status)" >&2
  exit 1
fi
echo "soak: passed"
