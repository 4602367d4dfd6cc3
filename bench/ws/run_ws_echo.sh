#!/usr/bin/env bash
# WebSocket echo: nbio's ws_echo against a Boost.Beast echo server, in the same invocation.
#
# usage: bench/ws/run_ws_echo.sh [BUILD]           BUILD: the build directory (default: build)
#
# For every server, connection count and message size: start the server pinned to SERVER_CPU,
# run `nbio-load --mode ws-echo --ramp-first` pinned to LOAD_CPU (one binary message in flight
# per connection, masked as a client must; every echo checked byte by byte), DURATION seconds of
# traffic after all connections are up, then stop the server.
#   nbio    ws_echo --loops 1 (one event loop)
#   beast   bench/baselines/beast_ws_echo (Beast's async server example, one io_context thread)
# Each pair runs ROUNDS times, the servers interleaved within each round; the table shows the
# medians. With one load core the client often limits msgs/s for both servers alike, so the
# second ratio, messages per second of server CPU (from /proc/PID/stat, via --server-pid),
# is the one that compares servers.
#
# Environment: DURATION (3) seconds; ROUNDS (3); CONNECTIONS ("100 10000"); SIZES
# ("64 1024 16384"); SERVERS ("nbio beast"); SERVER_CPU (0); LOAD_CPU (1).
# Output: the table, BUILD/bench/ws_echo.json (every run and the ratios), logs in
# BUILD/bench/ws_echo/.
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bin
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-"100 10000"}
SIZES=${SIZES:-"64 1024 16384"}
SERVERS=${SERVERS:-"nbio beast"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=$BUILD/bench
RUNS=$OUT/ws_echo

for b in nbio-load ws_echo beast_ws_echo; do
  if [ ! -x "$BIN/$b" ]; then
    echo "run_ws_echo: $BIN/$b is not built (cmake --build $BUILD --target bench_tools)" >&2
    exit 1
  fi
done
mkdir -p "$RUNS"
rm -f "$RUNS"/*.json
ulimit -n 20000 2>/dev/null || true

server_cmd() {  # NAME -> the command line, listening on a free port
  case "$1" in
    nbio) echo "$BIN/ws_echo --host 127.0.0.1 --port 0 --loops 1 --path /ws" ;;
    beast) echo "$BIN/beast_ws_echo --host 127.0.0.1 --port 0" ;;
    *) return 1 ;;
  esac
}

failed=0
echo "ws_echo: $ROUNDS rounds, ${DURATION}s of traffic per run; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
for round in $(seq "$ROUNDS"); do
  for conns in $CONNECTIONS; do
    for size in $SIZES; do
      for server in $SERVERS; do
        name=$server-$conns-$size-r$round
        log=$RUNS/$name.server.log
        : >"$log"
        # shellcheck disable=SC2046
        taskset -c "$SERVER_CPU" $(server_cmd "$server") >"$log" 2>&1 &
        pid=$!
        port=""
        for _ in $(seq 100); do
          port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
          [ -n "$port" ] && break
          sleep 0.05
        done
        if [ -z "$port" ]; then
          echo "  $name: server did not start"
          kill "$pid" 2>/dev/null || true
          failed=1
          continue
        fi
        printf '  round %s %-6s %6s conns %6s B ... ' "$round" "$server" "$conns" "$size"
        if taskset -c "$LOAD_CPU" timeout $((DURATION + 120)) "$BIN/nbio-load" --mode ws-echo \
            --path /ws -p "$port" -c "$conns" -s "$size" -d "$DURATION" --ramp-first \
            --server-pid "$pid" --json "$RUNS/$name.json" >/dev/null 2>"$RUNS/$name.load.log"; then
          python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.0f msgs/s" % j["msgs_per_s"])' "$RUNS/$name.json"
        else
          echo "failed (see $RUNS/$name.load.log)"
          failed=1
        fi
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
      done
    done
  done
done

python3 - "$RUNS" "$OUT/ws_echo.json" "$ROUNDS" "$CONNECTIONS" "$SIZES" "$SERVERS" <<'PY'
import json, os, statistics, sys
runs, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
conns_list, sizes, servers = sys.argv[4].split(), sys.argv[5].split(), sys.argv[6].split()

def load(server, c, s):
    rows = []
    for r in range(1, rounds + 1):
        p = os.path.join(runs, f"{server}-{c}-{s}-r{r}.json")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            j = json.load(open(p))
            cpu = j.get("server", {}).get("cpu_percent", 0) or 0
            rows.append({"msgs_per_s": j["msgs_per_s"], "p50_ms": j["latency_ms"]["p50"],
                         "p99_ms": j["latency_ms"]["p99"], "cpu_pct": cpu,
                         "msgs_per_cpu_s": j["msgs_per_s"] / (cpu / 100) if cpu > 0 else 0,
                         "errors": j["result"].get("errors", 0)})
    return rows

def med(rows, k):
    return statistics.median(r[k] for r in rows) if rows else None

table, comparisons, all_runs = [], [], {}
print(f"\n{'server':8} {'conns':>6} {'size':>6} {'msgs/s':>10} {'p50_ms':>8} {'p99_ms':>8} {'cpu%':>6} {'msgs/cpu_s':>11}")
for c in conns_list:
    for s in sizes:
        meds = {}
        for server in servers:
            rows = load(server, c, s)
            all_runs[f"{server}-{c}-{s}"] = rows
            if not rows:
                print(f"{server:8} {c:>6} {s:>6} {'-':>10}")
                continue
            m = {k: med(rows, k) for k in ("msgs_per_s", "p50_ms", "p99_ms", "cpu_pct", "msgs_per_cpu_s")}
            meds[server] = m
            print(f"{server:8} {c:>6} {s:>6} {m['msgs_per_s']:10.0f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} {m['cpu_pct']:6.0f} {m['msgs_per_cpu_s']:11.0f}")
        if "nbio" in meds and "beast" in meds:
            r1 = meds["nbio"]["msgs_per_s"] / meds["beast"]["msgs_per_s"]
            r2 = (meds["nbio"]["msgs_per_cpu_s"] / meds["beast"]["msgs_per_cpu_s"]
                  if meds["beast"]["msgs_per_cpu_s"] else 0)
            print(f"{'ratio':8} {c:>6} {s:>6}   msgs/s nbio/beast = {r1:.2f}   msgs per server CPU-s nbio/beast = {r2:.2f}")
            comparisons.append({"connections": int(c), "size": int(s), "msgs_per_s_ratio": round(r1, 3),
                                "cpu_efficiency_ratio": round(r2, 3), "nbio": meds["nbio"], "beast": meds["beast"]})
json.dump({"benchmark": "ws_echo", "rounds": rounds, "runs": all_runs, "comparisons": comparisons},
          open(out, "w"), indent=1)
print(f"\nwrote {out}")
PY
exit "$failed"
