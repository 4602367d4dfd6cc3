#!/usr/bin/env bash
# TLS: handshakes/s (full and resumed) and HTTPS keep-alive requests/s, nbio against nginx.
#
# usage: bench/tls/run_tls.sh [BUILD]             BUILD: the build directory (default: build)
#
# Certificates: a self-signed ECDSA P-256 and an RSA 2048 certificate for 127.0.0.1/localhost,
# made with `openssl req -x509` in a scratch directory. For every round, certificate and server:
# start the server pinned to CPU 0 with that certificate, check that GET / over TLS answers 200
# "hello\n", then run each case below for DURATION seconds after WARMUP seconds of the same
# load, the load pinned to CPU 1, reading the server's CPU time (utime + stime) and both cores'
# busy time (/proc/stat) before and after; stop the server.
#   nbio   BUILD/bin/http_hello --loops 1 --tls-cert --tls-key (one event loop): TLS 1.3
#          connections on nbio's record layer after OpenSSL's handshake (issue 15)
#   nbio-openssl  the same with --tls-no-handoff: every connection stays on OpenSSL
#   nginx  Debian's nginx from bench/tls/nginx_tls.conf.in: one process, `return 200 "hello\n"`,
#          TLSv1.2 TLSv1.3, ssl_session_cache shared + session tickets on
# Cases (the client negotiates TLS 1.3 with both; X25519, TLS_AES_256_GCM_SHA384):
#   full      BUILD/bin/nbio-load --mode tls-handshake: HS_CONNECTIONS connections, each one
#             connecting, handshaking, sending one GET / (Connection: close), reading the
#             response, closing, again; no session resumption. Every certificate.
#   resumed   the same with --tls-resume: each connection offers the last session ticket the
#             server gave; the fraction that resumed is reported. Certificates in RESUME_CERTS.
#   keepalive wrk -t1 -c KA_CONNECTIONS over https://: requests/s on established connections.
#             Certificates in KEEPALIVE_CERTS.
# nbio-load does not verify the certificate (--tls-insecure): the server's work is the same
# either way and the client's CPU is the scarcer one. One load core does the client's half of
# every handshake (for ECDSA the signature check costs the client more than signing costs the
# server), so the load's own CPU use is measured too (GNU time): a case whose load process used
# >= 90% of its core while the server used < 90% of its own is bounded by the client (marked
# "client-bound" in the table). Its rate per server CPU-second is then the figure that compares
# the servers, as in bench/http/run_http.sh. LOAD_PROCESSES > 1 runs that many nbio-load
# workers, on the same load core. PERF=1 records the server (nbio and nginx alike) with
# `perf record -g` during each measured run (BUILD/bench/tls/*.perf.data, with the split by
# shared object and the top symbols in *.perf.txt); perf's sampling costs the server a little.
#
# Environment: DURATION (5) WARMUP (1) whole seconds; ROUNDS (3); HS_CONNECTIONS (50);
# KA_CONNECTIONS (50); CERTS ("ecdsa rsa"); RESUME_CERTS ("ecdsa"); KEEPALIVE_CERTS ("ecdsa");
# SERVERS ("nbio nbio-openssl nginx"); LOAD_PROCESSES (1); PERF (0); NICE (0); NGINX (nginx);
# PORT_BASE (19900); SERVER_CPU (0); LOAD_CPU (1).
#
# Output: progress lines, a table of the medians over the rounds (rate, server CPU %, rate per
# server CPU-second, the load's CPU %, both cores' busy %, resumed fraction, errors, load
# average at the start of the run), the ratios
# nbio / nginx and nbio-openssl / nginx against the targets (handshakes >= 1x nginx, keep-alive
# requests per server CPU-second >= 1.3x), and nbio / nbio-openssl;
# BUILD/bench/tls.json (every run, the medians, the ratios); logs in BUILD/bench/tls/.
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bin
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
HS_CONNECTIONS=${HS_CONNECTIONS:-50}
KA_CONNECTIONS=${KA_CONNECTIONS:-50}
CERTS=${CERTS:-"ecdsa rsa"}
RESUME_CERTS=${RESUME_CERTS:-"ecdsa"}
KEEPALIVE_CERTS=${KEEPALIVE_CERTS:-"ecdsa"}
SERVERS=${SERVERS:-"nbio nbio-openssl nginx"}
LOAD_PROCESSES=${LOAD_PROCESSES:-1}
NGINX=${NGINX:-nginx}
PORT_BASE=${PORT_BASE:-19900}
OUT=$BUILD/bench
RUNS=$OUT/tls
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

scratch=$(mktemp -d /tmp/nbio-bench-tls.XXXXXX)
trap 'stop_all; rm -rf "$scratch"' EXIT

for tool in openssl wrk curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_tls: $tool is not installed (scripts/deps.sh installs it)" >&2
    exit 1
  fi
done
if [ ! -x "$BIN/nbio-load" ]; then
  echo "run_tls: $BIN/nbio-load is not built (cmake --build $BUILD --target nbio-load)" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
clk_tck=$(getconf CLK_TCK)
mkdir -p "$RUNS"
rm -f "$RUNS"/*.json "$RUNS"/*.log
warn_if_busy

# make_cert NAME KEYSPEC...: $scratch/NAME.pem and NAME.key, self-signed for 127.0.0.1.
make_cert() {
  local name=$1
  shift
  openssl req -x509 "$@" -nodes -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$scratch/$name.key" -out "$scratch/$name.pem" >/dev/null 2>&1
}
make_cert ecdsa -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
make_cert rsa -newkey rsa:2048

server_binary() {
  case $1 in
    nbio | nbio-openssl) echo "$BIN/http_hello" ;;
    nginx) command -v "$NGINX" || echo "$NGINX" ;;
    *) return 1 ;;
  esac
}

# start_nginx LOG PORT CERT: nginx from the template, pinned like start_server; sets server_pid.
start_nginx() {
  local log=$1 port=$2 cert=$3 prefix=$scratch/nginx-$2
  mkdir -p "$prefix"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@HOST@|$HOST|g" -e "s|@PORT@|$port|g" \
    -e "s|@CERT@|$scratch/$cert.pem|g" -e "s|@KEY@|$scratch/$cert.key|g" \
    -e "s|@WORKER_CONNECTIONS@|4096|g" -e "s|@NOFILE@|8192|g" \
    "$here/nginx_tls.conf.in" >"$prefix/nginx.conf"
  "${pin_server[@]}" "$NGINX" -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
    </dev/null >"$log" 2>&1 &
  server_pid=$!
  local waited=0
  while ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; do
    if ! kill -0 "$server_pid" 2>/dev/null || [ "$waited" -ge $((STARTUP_TIMEOUT * 10)) ]; then
      stop_server
      echo "    nginx not listening; last lines of its error log:" >&2
      tail -n 5 "$prefix/error.log" 2>/dev/null | sed 's/^/      /' >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# start SERVER LOG PORT CERT
start() {
  case $1 in
    nbio)
      start_server "$2" "$BIN/http_hello" --host "$HOST" --port "$3" --loops 1 \
        --tls-cert "$scratch/$4.pem" --tls-key "$scratch/$4.key"
      ;;
    nbio-openssl)
      start_server "$2" "$BIN/http_hello" --host "$HOST" --port "$3" --loops 1 \
        --tls-cert "$scratch/$4.pem" --tls-key "$scratch/$4.key" --tls-no-handoff
      ;;
    nginx) start_nginx "$2" "$3" "$4" ;;
  esac
}

# stop SERVER PORT LOG: stop the server; nginx's error log goes to the end of LOG.
stop() {
  stop_server
  if [ "$1" = nginx ] && [ -s "$scratch/nginx-$2/error.log" ]; then
    cat "$scratch/nginx-$2/error.log" >>"$3"
  fi
}

# cpu_ticks PID: utime + stime in clock ticks; fails once PID has exited.
cpu_ticks() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${stat##*) }"
  [ "${f[0]}" != Z ] || return 1
  echo $((f[11] + f[12]))
}

# core_ticks CPU: "busy total" ticks of one core from /proc/stat (busy: all but idle, iowait).
core_ticks() {
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' \
    /proc/stat
}

# busy_pct "BUSY0 TOTAL0" "BUSY1 TOTAL1": the core's busy percentage in between.
busy_pct() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
    t = y[2] - x[2]; if (t > 0) printf "%.1f", 100 * (y[1] - x[1]) / t; else print "null" }'
}

# load_run CASE LOG JSON SECONDS: the case's load pinned to LOAD_CPU against $port; its own
# CPU use (GNU time: wall, user and system seconds, children included) goes to LOG.time.
load_run() {
  local case=$1 log=$2 json=$3 seconds=$4
  local timed=(/usr/bin/time -f "%e %U %S" -o "$log.time")
  case $case in
    full | resumed)
      local resume=()
      [ "$case" = resumed ] && resume=(--tls-resume)
      run_load "$limit" "${timed[@]}" "$BIN/nbio-load" --mode tls-handshake --host "$HOST" \
        --port "$port" -c "$HS_CONNECTIONS" -d "$seconds" --loops 1 \
        --processes "$LOAD_PROCESSES" --tls --tls-insecure "${resume[@]}" --json "$json" \
        >"$log" 2>&1
      ;;
    keepalive)
      run_load "$limit" "${timed[@]}" env WRK_CONNECTIONS="$KA_CONNECTIONS" wrk -t1 \
        -c "$KA_CONNECTIONS" -d "${seconds}s" --latency -s "$here/../http/pipeline.lua" \
        "https://$HOST:$port/" -- 1 >"$log" 2>&1
      ;;
  esac
}

# load_cpu_pct LOG: the load's CPU use in percent of one core over its life, from LOG.time.
load_cpu_pct() {
  awk '{ if ($1 > 0) printf "%.1f", 100 * ($2 + $3) / $1; else print "null" }' "$1.time" \
    2>/dev/null || echo null
}

# perf_start NAME: with PERF=1, perf record -g of the server (either) for the next DURATION
# seconds.
perf_pid=""
perf_start() {
  [ "${PERF:-0}" = 1 ] || return 0
  perf record -F 999 -g -p "$server_pid" -o "$RUNS/$1.perf.data" -- sleep "$DURATION" \
    >"$RUNS/$1.perf.log" 2>&1 &
  perf_pid=$!
}
# perf_finish NAME: the profile's split by shared object, and the top symbols, next to it.
perf_finish() {
  [ -n "$perf_pid" ] || return 0
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=""
  {
    perf report -i "$RUNS/$1.perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
      grep -v -e '^$' -e '^#' | head -n 12
    echo
    perf report -i "$RUNS/$1.perf.data" --no-children --sort dso,symbol --stdio -g none \
      2>/dev/null | grep -v -e '^$' -e '^#' | head -n 40
  } >"$RUNS/$1.perf.txt" || true
}

# The cases of certificate CERT.
cases_of() {
  local c=(full)
  [[ " $RESUME_CERTS " == *" $1 "* ]] && c+=(resumed)
  [[ " $KEEPALIVE_CERTS " == *" $1 "* ]] && c+=(keepalive)
  echo "${c[@]}"
}

# SIGINT after the run plus room for the connects and the drain.
limit=$((DURATION + 30))

failed=0
runs_json=()
echo "tls: $ROUNDS rounds, ${DURATION}s per case after ${WARMUP}s warmup; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
echo "  handshakes: nbio-load --mode tls-handshake -c $HS_CONNECTIONS --processes $LOAD_PROCESSES; keep-alive: wrk -t1 -c $KA_CONNECTIONS"
available=()
for server in $SERVERS; do
  binary=$(server_binary "$server") || { echo "unknown server: $server" >&2; exit 1; }
  if [ -x "$binary" ]; then
    available+=("$server")
  else
    why="not built (cmake --build $BUILD --target http_hello)"
    [ "$server" = nginx ] && why="not installed (scripts/deps.sh installs it)"
    echo "  $server: skipped ($binary $why)"
    runs_json+=("{\"server\": \"$server\", \"status\": \"skipped\", \"reason\": \"$binary $why\"}")
  fi
done

for round in $(seq "$ROUNDS"); do
  for cert in $CERTS; do
    for server in "${available[@]}"; do
      next_free_port
      slog=$RUNS/$server-$cert-r$round.server.log
      if ! start "$server" "$slog" "$port" "$cert"; then
        echo "  round $round $server $cert: did not start"
        runs_json+=("{\"server\": \"$server\", \"cert\": \"$cert\", \"round\": $round, \"status\": \"failed\", \"reason\": \"server did not start\"}")
        failed=1
        continue
      fi
      answer=$(curl -sk --max-time 5 -w ' %{http_code}' "https://$HOST:$port/" 2>&1 || true)
      if [ "$answer" != $'hello\n 200' ]; then
        stop "$server" "$port" "$slog"
        echo "  round $round $server $cert: wrong answer to GET / over TLS: $answer"
        runs_json+=("{\"server\": \"$server\", \"cert\": \"$cert\", \"round\": $round, \"status\": \"failed\", \"reason\": \"GET / did not answer 200 hello\"}")
        failed=1
        continue
      fi
      for case in $(cases_of "$cert"); do
        name=$server-$case-$cert-r$round
        key="\"server\": \"$server\", \"case\": \"$case\", \"cert\": \"$cert\", \"round\": $round"
        printf '  round %s %-6s %-9s %-5s ... ' "$round" "$server" "$case" "$cert"
        if [ "$WARMUP" -gt 0 ]; then
          load_run "$case" "$RUNS/$name.warmup.log" "$scratch/warmup.json" "$WARMUP" || true
          sleep 0.5
        fi
        loadavg=$(cut -d' ' -f1 /proc/loadavg)
        status=ok
        reason=""
        before=$(cpu_ticks "$server_pid" || echo "")
        s0=$(core_ticks "$SERVER_CPU")
        l0=$(core_ticks "$LOAD_CPU")
        rc=0
        perf_start "$name"
        load_run "$case" "$RUNS/$name.load.log" "$RUNS/$name.load.json" "$DURATION" || rc=$?
        perf_finish "$name"
        s1=$(core_ticks "$SERVER_CPU")
        l1=$(core_ticks "$LOAD_CPU")
        after=$(cpu_ticks "$server_pid" || echo "")
        if [ "$rc" -ne 0 ]; then
          status=failed
          reason="the load exited with status $rc"
        fi
        if [ -z "$after" ]; then
          status=failed
          reason="server exited during the run"
        fi
        # The figures: rate (handshakes/s or requests/s), errors, resumed fraction.
        rate="" errors=0 resumed=null unit=handshakes_per_s
        if [ "$case" = keepalive ]; then
          unit=requests_per_s
          result=$(sed -n 's/^wrk_json //p' "$RUNS/$name.load.log" | tail -n 1)
          if [ -n "$result" ]; then
            echo "$result" >"$scratch/wrk.json"
            rate=$(awk -v n="$(json_num "$scratch/wrk.json" requests)" \
              -v us="$(json_num "$scratch/wrk.json" duration_us)" \
              'BEGIN { if (us > 0) printf "%.1f", n / (us / 1e6) }')
            for e in connect read write status timeout; do
              errors=$((errors + $(json_num "$scratch/wrk.json" "errors_$e")))
            done
          fi
        elif [ -s "$RUNS/$name.load.json" ]; then
          j=$RUNS/$name.load.json
          rate=$(json_num "$j" handshakes_per_s)
          errors=$(($(json_num "$j" failed) + $(json_num "$j" closed_early)))
          resumed=$(json_num "$j" resumed_fraction)
        fi
        if [ -z "$rate" ]; then
          echo "no result (see $RUNS/$name.load.log)"
          runs_json+=("{$key, \"status\": \"failed\", \"reason\": \"${reason:-the load printed no result}\"}")
          failed=1
          continue
        fi
        if [ "$status" = ok ] && [ "$errors" -gt 0 ]; then
          status=errors
          reason="$errors errors"
        fi
        [ "$status" = ok ] || failed=1
        cpu_s=null
        if [ -n "$before" ] && [ -n "$after" ]; then
          cpu_s=$(awk -v t=$((after - before)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
        fi
        read -r cpu_pct per_cpu_s <<<"$(awk -v r="$rate" -v c="$cpu_s" -v d="$DURATION" 'BEGIN {
          if (c == "null" || c <= 0) print "null", "null"
          else printf "%.1f %.1f\n", 100 * c / d, r * d / c }')"
        server_busy=$(busy_pct "$s0" "$s1")
        load_busy=$(busy_pct "$l0" "$l1")
        load_cpu=$(load_cpu_pct "$RUNS/$name.load.log")
        # What bounds the rate: the side whose process used ~all of its core; neither when both
        # waited (other work on the machine took the cores: see the cores' busy figures).
        bound=$(awk -v l="$load_cpu" -v s="$cpu_pct" 'BEGIN {
          if (s != "null" && s >= 90) print "server"
          else if (l != "null" && l >= 90) print "client"
          else print "neither" }')
        echo "{$key, \"status\": \"$status\", \"reason\": \"$reason\", \"unit\": \"$unit\", \"rate\": $rate, \"server_cpu_s\": $cpu_s, \"server_cpu_pct\": $cpu_pct, \"rate_per_server_cpu_s\": $per_cpu_s, \"server_core_busy_pct\": $server_busy, \"load_core_busy_pct\": $load_busy, \"load_cpu_pct\": $load_cpu, \"bound\": \"$bound\", \"resumed_fraction\": $resumed, \"errors\": $errors, \"loadavg\": $loadavg}" >"$RUNS/$name.json"
        runs_json+=("$(cat "$RUNS/$name.json")")
        printf '%8.0f %s, server %s%% CPU, load %s%% CPU, %s errors, load avg %s%s%s\n' "$rate" \
          "${unit%_per_s}/s" "$cpu_pct" "$load_cpu" "$errors" "$loadavg" \
          "$([ "$resumed" = null ] || printf ', resumed %.3f' "$resumed")" \
          "$([ "$status" = ok ] || echo " ($status: $reason; see $RUNS/$name.load.log)")"
      done
      stop "$server" "$port" "$slog"
    done
  done
done

# median SERVER CASE CERT KEY: the median of KEY over the rounds ("" if none).
median() {
  local values=() r v
  for r in $(seq "$ROUNDS"); do
    v=$(json_num "$RUNS/$1-$2-$3-r$r.json" "$4")
    [ -n "$v" ] && values+=("$v")
  done
  [ ${#values[@]} -gt 0 ] || return 0
  printf '%s\n' "${values[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ratio() {
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b }'
}

fmt() { if [ -n "$2" ]; then printf "%.${1}f" "$2"; else echo -; fi; }

echo
printf '%-12s %-9s %-5s %10s %6s %11s %6s %9s %10s %8s %6s %7s\n' server case cert rate cpu% \
  rate/cpu_s load% core0busy core1busy resumed errors loadavg
keys="rate server_cpu_pct rate_per_server_cpu_s load_cpu_pct server_core_busy_pct load_core_busy_pct resumed_fraction errors loadavg"
medians=()
for cert in $CERTS; do
  for case in $(cases_of "$cert"); do
    for server in $SERVERS; do
      declare -A m=()
      fields=()
      for k in $keys; do
        m[$k]=$(median "$server" "$case" "$cert" "$k")
        fields+=("\"$k\": ${m[$k]:-null}")
      done
      bounds=$(cat "$RUNS/$server-$case-$cert"-r*.json 2>/dev/null | grep -c '"bound": "client"' || true)
      printf '%-12s %-9s %-5s %10s %6s %11s %6s %9s %10s %8s %6s %7s%s\n' "$server" "$case" "$cert" \
        "$(fmt 0 "${m[rate]}")" "$(fmt 0 "${m[server_cpu_pct]}")" \
        "$(fmt 0 "${m[rate_per_server_cpu_s]}")" "$(fmt 0 "${m[load_cpu_pct]}")" \
        "$(fmt 0 "${m[server_core_busy_pct]}")" \
        "$(fmt 0 "${m[load_core_busy_pct]}")" "$(fmt 3 "${m[resumed_fraction]}")" \
        "$(fmt 0 "${m[errors]}")" "$(fmt 2 "${m[loadavg]}")" \
        "$([ "${bounds:-0}" -gt 0 ] && echo "  client-bound in $bounds of $ROUNDS")"
      if [ -n "${m[rate]}" ]; then
        medians+=("{\"server\": \"$server\", \"case\": \"$case\", \"cert\": \"$cert\", \"client_bound_rounds\": ${bounds:-0}, $(IFS=,; echo "${fields[*]}")}")
      fi
      unset m
    done
  done
done

echo
echo "ratios (medians): rate, and rate per server CPU-second"
comparisons=()
for pair in nbio/nginx nbio-openssl/nginx nbio/nbio-openssl; do
  a=${pair%/*} b=${pair#*/}
  for cert in $CERTS; do
    for case in $(cases_of "$cert"); do
      rate=$(ratio "$(median "$a" "$case" "$cert" rate)" "$(median "$b" "$case" "$cert" rate)")
      per_cpu=$(ratio "$(median "$a" "$case" "$cert" rate_per_server_cpu_s)" \
        "$(median "$b" "$case" "$cert" rate_per_server_cpu_s)")
      [ -n "$rate$per_cpu" ] || continue
      target=null
      if [ "$b" = nginx ]; then
        target=1.0
        [ "$case" = keepalive ] && target=1.3
      fi
      printf '  %-18s %-9s %-5s rate %6s  per server CPU-s %6s%s\n' "$pair" "$case" "$cert" \
        "${rate:--}" "${per_cpu:--}" "$([ "$target" = null ] || echo "  (target >= $target)")"
      comparisons+=("{\"pair\": \"$pair\", \"case\": \"$case\", \"cert\": \"$cert\", \"rate_ratio\": ${rate:-null}, \"rate_per_server_cpu_s_ratio\": ${per_cpu:-null}, \"target\": $target}")
    done
  done
done

join() { local IFS=,; echo "$*"; }
{
  echo "{"
  echo "  \"benchmark\": \"tls\", \"host\": \"$HOST\", \"path\": \"/\","
  echo "  \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"rounds\": $ROUNDS,"
  echo "  \"hs_connections\": $HS_CONNECTIONS, \"ka_connections\": $KA_CONNECTIONS, \"load_processes\": $LOAD_PROCESSES,"
  echo "  \"server_cpu\": \"$SERVER_CPU\", \"load_cpu\": \"$LOAD_CPU\", \"nproc\": $(nproc), \"nice\": ${NICE:-0},"
  echo "  \"openssl\": \"$(openssl version | head -n 1)\","
  echo "  \"wrk\": \"$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//')\","
  echo "  \"nginx\": \"$("$NGINX" -v 2>&1 | sed 's/.*: //' || true)\","
  echo "  \"runs\": [$(join "${runs_json[@]}")],"
  echo "  \"medians\": [$(join "${medians[@]}")],"
  echo "  \"comparisons\": [$(join "${comparisons[@]}")]"
  echo "}"
} >"$OUT/tls.json"
echo
echo "wrote $OUT/tls.json"
exit "$failed"
