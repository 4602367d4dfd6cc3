#!/usr/bin/env bash
# bench/million/run.sh BUILD_DIR: a million concurrent TCP connections on this machine, then 1 KiB
# echoes over them (what `make bench-million` runs). MODE=ws: the same over WebSocket.
#
#   0. Re-runs itself in a new network namespace whose TCP socket hash table fits the run.
#   1. Checks the kernel settings the run needs and prints them with what it needs; names the
#      ones that are off and stops (FIX=1 sets them with sysctl -w first).
#   2. Starts bin/tcp_echo --workers W --ports BASE_PORT..+PORTS-1 --loops 1 on 127.0.0.1: W
#      worker processes on the same SO_REUSEPORT ports, each under the open-files hard limit.
#      MODE=ws: bin/ws_echo --workers W --port BASE_PORT --loops 1 (one port, path /ws).
#   3. Runs bin/nbio-load --ramp-first in P processes: opens CONNECTIONS connections (spread over
#      the ports; more source addresses when the ephemeral ports would run out), and once all
#      are up, DURATION seconds of SIZE-byte echoes with IN_FLIGHT messages in flight in all.
#      It samples every server process (--server-pid) once a second. MODE=ws: --mode ws-echo,
#      each connection sends its upgrade on open; a message is one SIZE-byte binary frame.
#   4. Samples /proc/meminfo and /proc/net/sockstat once a second meanwhile (kernel memory).
#   5. Writes BUILD_DIR/million/report.json (the summary and nbio-load's full report),
#      load.json and report.svg, prints a summary with the targets, and stops everything.
#
# Environment (defaults for the headline run):
#   MODE tcp (tcp_echo, nbio-load --mode tcp-echo) or ws (ws_echo, --mode ws-echo); default tcp
#   CONNECTIONS 1000000   DURATION 60   SIZE 1024   IN_FLIGHT 10000
#   PORTS 100 (MODE=ws: 1, all ws_echo listens on)   BASE_PORT 21000
#   WORKERS  server worker processes (default: one per 16,000 connections)
#   PROCESSES nbio-load processes (default: one per 18,000 connections)
#   CONNECT_WINDOW connects in flight in all (1000)   FIX=1 apply the missing kernel settings
#   NETNS 1: run in a new network namespace with a large enough TCP hash table (step 0); 0: not
#   OUT_DIR where the reports go (default BUILD_DIR/million)
#   BACKEND epoll (default), io_uring or auto: --backend of the server and of nbio-load; both:
#           the run on each, one after the other, and a table of the two (OUT_DIR/epoll, .../io_uring)
#   URING_BUFFERS receive buffers per loop under io_uring (256: a worker has ~160 echoes in
#              flight; the 2,048 default would make each of the ~63 workers 8 MiB resident)
#
# Exit status: 0 when every connection was established and held through the run (MODE=ws: and
# upgraded, by the server's count); 1 otherwise;
# 2 when the machine is not set up for the run (the lines above say what to change).
set -euo pipefail

build_dir=${1:-build}
bin=$build_dir/bin
out_dir=${OUT_DIR:-$build_dir/million}
mode=${MODE:-tcp}
connections=${CONNECTIONS:-1000000}
duration=${DURATION:-60}
size=${SIZE:-1024}
in_flight=${IN_FLIGHT:-10000}
base_port=${BASE_PORT:-21000}
connect_window=${CONNECT_WINDOW:-1000}
fix=${FIX:-0}
backend=${BACKEND:-epoll}
uring_buffers=${URING_BUFFERS:-256}
ws_path=/ws
case $mode in
  tcp)
    server=tcp_echo ports=${PORTS:-100} load_args=(--mode tcp-echo)
    ;;
  ws)
    # ws_echo listens on one port; the ephemeral ports run out sooner, so nbio-load spreads
    # the connections over more source addresses (127.0.0.x) instead.
    server=ws_echo ports=${PORTS:-1} load_args=(--mode ws-echo --path "$ws_path")
    if [ "$ports" != 1 ]; then
      echo "million: MODE=ws serves one port (ws_echo --port): PORTS=$ports is not supported" >&2
      exit 2
    fi
    ;;
  *)
    echo "million: MODE=$mode: expected tcp or ws" >&2
    exit 2
    ;;
esac

# BACKEND=both: the run on epoll, then on io_uring, in one invocation, and the two side by side.
if [ "$backend" = both ]; then
  status=0
  for b in epoll io_uring; do
    BACKEND=$b OUT_DIR="$out_dir/$b" bash "$0" "$build_dir" || status=$?
  done
  echo
  echo "million: epoll against io_uring ($mode, $connections connections)"
  printf '  %-9s %12s %10s %22s %14s\n' backend established msgs/s "msgs per server CPU-s" p99_ms
  for b in epoll io_uring; do
    r="$out_dir/$b/report.json"
    [ -s "$r" ] || { printf '  %-9s %12s\n' "$b" "no report"; continue; }
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); e=j["echo"]; print("  %-9s %12d %10.0f %22d %14.1f" % (sys.argv[2], j["established"], e["msgs_per_s"], j["msgs_per_server_cpu_s"], e["p99_ms"]))' "$r" "$b"
  done
  exit "$status"
fi

for program in $server nbio-load; do
  if [ ! -x "$bin/$program" ]; then
    echo "million: $bin/$program not found: run 'make build' first" >&2
    exit 1
  fi
done

# --- 0. a network namespace with a socket hash table sized for the run --------------------------
# The kernel sizes the default namespace's table of established TCP sockets at boot (262,144
# buckets on this 24 GiB machine): two million sockets make chains of 8 that every packet walks
# (perf: __inet_lookup_established took 20% of all cycles at a million). A new namespace gets
# net.ipv4.tcp_child_ehash_entries buckets, so by default the run happens in one, on its own
# loopback interface (NETNS=0: in the current namespace).
ehash_need=1
while [ "$ehash_need" -lt $((2 * connections)) ]; do ehash_need=$((ehash_need * 2)); done
ehash_now=$(cat /proc/sys/net/ipv4/tcp_ehash_entries 2>/dev/null || echo 0)
child_ehash=/proc/sys/net/ipv4/tcp_child_ehash_entries
if [ "${NETNS:-1}" = 1 ] && [ -z "${NBIO_MILLION_NETNS:-}" ] && [ "$ehash_now" -lt "$ehash_need" ]; then
  if [ -w "$child_ehash" ] && unshare --net true 2>/dev/null && command -v ip >/dev/null; then
    old_child_ehash=$(cat "$child_ehash")
    trap 'echo "$old_child_ehash" >"$child_ehash"' EXIT
    echo "$ehash_need" >"$child_ehash"
    echo "million: running in a new network namespace with $ehash_need TCP hash buckets" \
      "(this one has $ehash_now)"
    rc=0
    # tcp_mem is global and shows only in the first namespace: pass it on.
    NBIO_MILLION_TCP_MEM=$(tr -s ' \t' ' ' </proc/sys/net/ipv4/tcp_mem)
    export NBIO_MILLION_TCP_MEM NBIO_MILLION_NETNS=1
    unshare --net -- bash -c 'ip link set lo up && exec bash "$0" "$@"' \
      "$0" "$@" || rc=$?
    exit "$rc"
  fi
  echo "million: cannot create a network namespace (needs root and unshare, ip):" \
    "running in this one, with $ehash_now TCP hash buckets" >&2
fi

fd_hard=$(ulimit -Hn)
[ "$fd_hard" = unlimited ] && fd_hard=1048576
ulimit -n "$fd_hard"
# Connections per process with room for reuseport's uneven spread (server) and for the
# process's own descriptors.
server_share=$((fd_hard * 4 / 5))
load_share=$((fd_hard * 9 / 10))
workers=${WORKERS:-$(((connections + server_share - 1) / server_share))}
processes=${PROCESSES:-$(((connections + load_share - 1) / load_share))}
[ "$in_flight" -gt "$connections" ] && in_flight=$connections

# --- 1. kernel settings --------------------------------------------------------------------

sysctl_value() {
  if [ "$1" = net.ipv4.tcp_mem ] && [ -n "${NBIO_MILLION_TCP_MEM:-}" ]; then
    echo "$NBIO_MILLION_TCP_MEM"
  else
    tr -s ' \t' ' ' <"/proc/sys/${1//.//}" 2>/dev/null || echo missing
  fi
}
meminfo_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }

off=()       # settings that stop the run
setting_row() {  # name value need verdict
  printf '  %-34s %-22s %-26s %s\n' "$1" "$2" "$3" "$4"
}
# check NAME NEEDED_MIN [FIELD]: a sysctl whose FIELD-th number (default 1) must be >= NEEDED.
check_min() {
  local name=$1 need=$2 field=${3:-1} value v
  value=$(sysctl_value "$name")
  v=$(echo "$value" | awk -v f="$field" '{print $f}')
  if [ "$value" = missing ]; then
    setting_row "$name" "(absent)" ">= $need" "ok (not applicable)"
  elif [ "$v" -ge "$need" ]; then
    setting_row "$name" "$value" ">= $need" ok
  else
    setting_row "$name" "$value" ">= $need" OFF
    off+=("$name")
    if [ "$fix" = 1 ]; then
      local new=$value
      if [ "$field" = 1 ]; then new=$need; else new=$(echo "$value" | awk -v f="$field" \
        -v n="$need" '{$f = n; print}'); fi
      sysctl -q -w "$name=$new" && echo "    FIX=1: set $name = $new"
    fi
  fi
}

echo "million: $mode: $connections connections, $workers $server workers, $processes nbio-load" \
  "processes, $ports ports from $base_port; then ${duration}s of $size-byte echoes," \
  "$in_flight in flight"
echo "kernel settings"
setting_row setting value needed verdict
# Both ends run here: two descriptors per connection, plus the rest of the machine.
check_min fs.file-max $((2 * connections + 65536))
check_min fs.nr_open 20000
# Each listening socket asks for a backlog of 4096; a cap below the connects in flight could
# drop handshakes in the ramp (retried after 1 s, 3 s, ...).
check_min net.core.somaxconn "$connect_window"
check_min net.ipv4.tcp_max_syn_backlog "$connect_window"
# Socket buffers in flight: about 4 pages per message in flight at each end, plus headroom.
check_min net.ipv4.tcp_mem $((in_flight * 8 + 65536)) 3
# When netfilter's connection tracking tracks (rules use it), every connection is an entry and
# a full table drops new ones.
if [ "$(sysctl_value net.netfilter.nf_conntrack_count)" = 0 ]; then
  setting_row net.netfilter.nf_conntrack_max "$(sysctl_value net.netfilter.nf_conntrack_max)" \
    "any" "ok (tracks nothing now)"
else
  check_min net.netfilter.nf_conntrack_max $((connections + 65536))
fi
# Not fatal: a small table only slows every packet down (see step 0).
ehash_now=$(sysctl_value net.ipv4.tcp_ehash_entries)
if [ "$ehash_now" != missing ] && [ "$ehash_now" -ge "$ehash_need" ]; then
  setting_row net.ipv4.tcp_ehash_entries "$ehash_now" ">= $ehash_need" ok
else
  setting_row net.ipv4.tcp_ehash_entries "$ehash_now" ">= $ehash_need" "slow (NETNS=1 fixes)"
fi
range=$(sysctl_value net.ipv4.ip_local_port_range)
range_width=$(echo "$range" | awk '{print $2 - $1 + 1}')
sources=$(((connections + ports * range_width / 2 - 1) / (ports * range_width / 2)))
setting_row net.ipv4.ip_local_port_range "$range" "x $ports ports" \
  "ok ($sources source address(es) 127.0.0.x)"
if [ "$fd_hard" -lt 1024 ]; then
  setting_row "open files (ulimit -Hn)" "$fd_hard" ">= 1024" OFF
  off+=("ulimit -Hn")
else
  setting_row "open files (ulimit -Hn)" "$fd_hard" "per process" \
    "ok ($workers + $processes processes)"
fi
# Observed: about 6.6 KB of kernel memory per connection pair (two sockets), plus the echo.
mem_need_kb=$((connections * 9 + 1048576))
mem_avail_kb=$(meminfo_kb MemAvailable)
if [ "$mem_avail_kb" -ge "$mem_need_kb" ]; then
  setting_row MemAvailable "$((mem_avail_kb / 1024)) MiB" ">= $((mem_need_kb / 1024)) MiB" ok
else
  setting_row MemAvailable "$((mem_avail_kb / 1024)) MiB" ">= $((mem_need_kb / 1024)) MiB" OFF
  off+=(MemAvailable)
fi
if [ ${#off[@]} -gt 0 ] && [ "$fix" != 1 ]; then
  echo "million: not set up for this run: ${off[*]}. Set the sysctls above (as root:" \
    "sysctl -w NAME=VALUE, or FIX=1 make bench-million), free memory, or lower CONNECTIONS." >&2
  exit 2
fi
if [ ${#off[@]} -gt 0 ]; then
  for name in "${off[@]}"; do
    case $name in
      MemAvailable | "ulimit -Hn")
        echo "million: $name cannot be fixed here" >&2
        exit 2
        ;;
    esac
  done
fi
busy=$(ss -Hltn "( sport >= :$base_port and sport < :$((base_port + ports)) )" | wc -l)
if [ "$busy" -gt 0 ]; then
  echo "million: $busy socket(s) already listen on ports $base_port..$((base_port + ports - 1))" \
    "(set BASE_PORT)" >&2
  exit 2
fi

# --- 2. the server ----------------------------------------------------------------------------

mkdir -p "$out_dir"
rm -f "$out_dir"/{report.json,load.json,report.svg,kernel.tsv,server.log}
server_pid=
load_pid=
sampler_pid=
cleanup() {
  for pid in $sampler_pid $load_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$mode" = ws ]; then
  "$bin/ws_echo" --host 127.0.0.1 --port "$base_port" --path "$ws_path" --workers "$workers" \
    --loops 1 --backend "$backend" --uring-buffers "$uring_buffers" >"$out_dir/server.log" 2>&1 &
else
  "$bin/tcp_echo" --host 127.0.0.1 --ports "$base_port-$((base_port + ports - 1))" \
    --workers "$workers" --loops 1 --backend "$backend" --uring-buffers "$uring_buffers" >"$out_dir/server.log" 2>&1 &
fi
server_pid=$!
want_listeners=$((workers * ports))
deadline=$((SECONDS + 60))
while :; do
  listeners=$(ss -Hltn "( sport >= :$base_port and sport < :$((base_port + ports)) )" | wc -l)
  [ "$listeners" -ge "$want_listeners" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "million: $server did not open its $want_listeners listening sockets" \
      "($listeners open)" >&2
    tail -5 "$out_dir/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
# ws_echo's workers first run the HTTP and WebSocket code (and libcrypto's SHA-1) at their first
# upgrade, faulting in ~2.7 MB of library and program pages each: 16 upgrades per worker first,
# so that the baseline below holds them and the growth is the connections' own memory.
warm_up=0
if [ "$mode" = ws ]; then
  warm_up=$((workers * 16))
  "$bin/nbio-load" "${load_args[@]}" -p "$base_port" -c "$warm_up" -d 1 -s "$size" \
    --json /dev/null >/dev/null 2>&1 || {
    echo "million: the $warm_up warm-up connections to $server failed" >&2
    exit 1
  }
  sleep 1
fi
mapfile -t worker_pids < <(pgrep -P "$server_pid")
pid_args=(--server-pid "$server_pid")
for pid in "${worker_pids[@]}"; do pid_args+=(--server-pid "$pid"); done
echo "million: $server supervisor $server_pid, ${#worker_pids[@]} workers," \
  "$listeners listening sockets"

# --- 3 and 4. the load, and the kernel's memory meanwhile --------------------------------------

kernel_sample() {  # seconds MemAvailable_kB Slab_kB tcp_inuse tcp_mem_pages
  local t=$1
  awk -v t="$t" '
    FILENAME == "/proc/meminfo" && $1 == "MemAvailable:" {avail = $2}
    FILENAME == "/proc/meminfo" && $1 == "Slab:" {slab = $2}
    FILENAME == "/proc/net/sockstat" && $1 == "TCP:" {
      for (i = 2; i < NF; i += 2) { if ($i == "inuse") inuse = $(i + 1); if ($i == "mem") mem = $(i + 1) }
    }
    END {printf "%s\t%s\t%s\t%s\t%s\n", t, avail, slab, inuse, mem}' /proc/meminfo /proc/net/sockstat
}
# Handshakes completed while a worker's accept queue was full: the kernel drops them and the
# client, which counts the connection as up, retransmits (its first bytes arrive late).
listen_overflows() {
  awk '$1 == "TcpExt:" {
    if (!names) { for (i = 2; i <= NF; i++) name[i] = $i; names = 1; next }
    for (i = 2; i <= NF; i++) if (name[i] == "ListenOverflows") print $i
  }' /proc/net/netstat
}
overflows_before=$(listen_overflows)
kernel_before=$(kernel_sample 0)
(
  start=$SECONDS
  while :; do
    kernel_sample $((SECONDS - start)) >>"$out_dir/kernel.tsv"
    sleep 1
  done
) &
sampler_pid=$!

load_status=0
"$bin/nbio-load" "${load_args[@]}" --ramp-first -c "$connections" --processes "$processes" \
  --loops 1 --backend "$backend" --uring-buffers "$uring_buffers" -p "$(seq -s, "$base_port" $((base_port + ports - 1)))" \
  --connect-window "$connect_window" --connect-timeout-ms 30000 --in-flight "$in_flight" \
  -s "$size" -d "$duration" "${pid_args[@]}" \
  --json "$out_dir/load.json" --plot "$out_dir/report.svg" &
load_pid=$!
wait "$load_pid" || load_status=$?
load_pid=
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
overflows=$(($(listen_overflows) - overflows_before))

# Per-worker RSS after the load closed: the memory that stays.
kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=

# --- 5. the report --------------------------------------------------------------------------------

json_num() {  # FILE KEY: the first number for "KEY": in an indented JSON document
  awk -v key="\"$2\":" '$1 == key {gsub(/[ ,]/, "", $2); print $2; exit}' "$1"
}
report=$out_dir/load.json
if [ ! -s "$report" ]; then
  echo "million: nbio-load wrote no report (exit $load_status)" >&2
  exit 1
fi
established=$(json_num "$report" established)
failed=$(json_num "$report" failed)
lost=$(json_num "$report" closed_early)
connect_s=$(json_num "$report" connect_seconds)
msgs=$(json_num "$report" msgs_per_s)
p50=$(json_num "$report" p50)
p99=$(json_num "$report" p99)
rss_start=$(json_num "$report" rss_start_kib)
rss_peak=$(json_num "$report" rss_peak_kib)
server_cpu=$(json_num "$report" cpu_percent)
msgs_per_cpu=$(awk -v m="$msgs" -v c="$server_cpu" 'BEGIN {printf "%.0f", (c > 0 ? m * 100 / c : 0)}')
first_error=$(awk -F'"' '/"first_error":/ {print $4; exit}' "$report")

read -r _ avail_before slab_before _ _ <<<"$kernel_before"
# The most the kernel held: the sample with the least MemAvailable (all connections up).
read -r _ avail_held slab_held inuse_held tcpmem_held < <(sort -t$'\t' -k2,2n "$out_dir/kernel.tsv" | head -1)
mem_used_mib=$(((avail_before - avail_held) / 1024))
slab_growth_mib=$(((slab_held - slab_before) / 1024))
per_conn() { awk -v a="$1" -v n="$established" 'BEGIN {printf "%.0f", (n > 0 ? a / n : 0)}'; }
rss_per_conn=$(per_conn $(((rss_peak - rss_start) * 1024)))
verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo MISSED; fi; }
t_conn=$(verdict "$established >= $connections && $lost == 0")
t_rss=$(verdict "$rss_peak <= 400 * 1000")
t_msgs=$(verdict "$msgs >= 100000")
t_p99=$(verdict "$p99 < 200")

{
  echo "{"
  echo "  \"mode\": \"$mode\", \"backend\": \"$backend\","
  echo "  \"connections\": $connections, \"established\": $established, \"failed\": $failed,"
  echo "  \"lost_early\": $lost, \"connect_seconds\": $connect_s,"
  echo "  \"server_workers\": $workers, \"load_processes\": $processes, \"ports\": $ports,"
  echo "  \"server_rss_start_kib\": $rss_start, \"server_rss_peak_kib\": $rss_peak,"
  echo "  \"server_rss_growth_per_conn_bytes\": $rss_per_conn,"
  echo "  \"server_cpu_percent\": $server_cpu, \"msgs_per_server_cpu_s\": $msgs_per_cpu,"
  echo "  \"echo\": {\"size\": $size, \"in_flight\": $in_flight, \"seconds\": $duration,"
  echo "           \"msgs_per_s\": $msgs, \"p50_ms\": $p50, \"p99_ms\": $p99},"
  echo "  \"kernel\": {\"mem_available_before_kib\": $avail_before,"
  echo "             \"mem_available_held_kib\": $avail_held, \"slab_before_kib\": $slab_before,"
  echo "             \"slab_held_kib\": $slab_held, \"tcp_inuse_held\": $inuse_held,"
  echo "             \"tcp_mem_pages_held\": $tcpmem_held, \"listen_overflows\": $overflows},"
  echo "  \"targets\": {\"all_established\": \"$t_conn\", \"server_rss_400mb\": \"$t_rss\","
  echo "              \"msgs_100k\": \"$t_msgs\", \"p99_200ms\": \"$t_p99\"},"
  echo "  \"load\": $(cat "$report")"
  echo "}"
} >"$out_dir/report.json"

row() { printf '  %-40s %-28s %s\n' "$@"; }
echo
echo "million summary (report: $out_dir/report.json, plot: $out_dir/report.svg)"
row "connections established" "$established of $connections" "$t_conn"
row "connect failures / lost early" "$failed / $lost" ""
row "ramp (all connects settled)" "$(printf %.1f "$connect_s") s" ""
row "server RSS start -> peak (all workers)" "$((rss_start / 1024)) -> $((rss_peak / 1024)) MiB" \
  "$t_rss (<= 400 MB)"
row "server RSS growth per connection" "$rss_per_conn bytes" ""
row "echo msgs/s ($in_flight x $size B)" "$(printf %.0f "$msgs")" "$t_msgs (>= 100,000)"
row "echo p50 / p99" "$(printf '%.1f / %.1f' "$p50" "$p99") ms" "$t_p99 (p99 < 200 ms)"
row "server CPU (whole run, % of a core)" "$(printf %.1f "$server_cpu")" ""
row "echo msgs per server CPU-second" "$msgs_per_cpu" "$backend"
row "kernel: MemAvailable drop while held" "$mem_used_mib MiB" \
  "$(per_conn $(((avail_before - avail_held) * 1024))) B/conn (both ends)"
row "kernel: Slab growth while held" "$slab_growth_mib MiB" \
  "$(per_conn $(((slab_held - slab_before) * 1024))) B/conn (both ends)"
row "kernel: TCP sockets in use (peak sample)" "$inuse_held" ""
row "kernel: accept queue overflows" "$overflows" "(handshakes dropped, retried)"
[ -n "$first_error" ] && row "first error" "$first_error" ""
upgrades_ok=1
if [ "$mode" = ws ]; then
  # Each worker counts its upgrades on stderr as it stops ("... N connections upgraded").
  upgraded=$(awk '/connections upgraded/ {n += $(NF - 2)} END {print n + 0}' "$out_dir/server.log")
  row "WebSocket upgrades (server's count)" \
    "$((upgraded - warm_up)) of $connections (+$warm_up warm-up)" ""
  [ "$((upgraded - warm_up))" -eq "$established" ] || upgrades_ok=0
fi
grep -E "workers started" "$out_dir/server.log" | sed 's/^/  /' || true

if [ "$load_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
  echo "million: FAILED (nbio-load exit $load_status, $server exit $server_status)" >&2
  exit 1
fi
if [ "$upgrades_ok" != 1 ]; then
  echo "million: FAILED ($server upgraded $((upgraded - warm_up)) of the $established" \
    "connections established)" >&2
  exit 1
fi
