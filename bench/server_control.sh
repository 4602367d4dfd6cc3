# shellcheck shell=bash disable=SC2034  # pin_load and cmd are for the scripts sourcing this
# server_control.sh: the servers the run_*.sh benchmarks measure, and their lifecycle.
# Sourced, not run. Expects BIN (the build's bin directory) to be set.
#
#   server_command NAME PORT   sets the array `cmd` to NAME's command line; fails if unknown
#   server_binary NAME         prints the binary NAME runs
#   start_server LOG CMD...    starts CMD pinned to SERVER_CPU, waits for its `listening on`
#                              line, sets server_pid; fails (with the log's tail) if it exits or
#                              is not listening within STARTUP_TIMEOUT seconds
#   stop_server                SIGTERM, then SIGKILL after 5 s; safe to call twice
#   run_load LIMIT CMD...      runs the client CMD pinned to LOAD_CPU and returns its status;
#                              SIGINT after LIMIT seconds, SIGKILL 10 s later
#   next_free_port             sets `port` to the next port from PORT_BASE up with no listener
#   json_num FILE KEY          prints the first numeric KEY in FILE (output of echo_load/tcp_idle)
#
# Every server and client started here is stopped on exit, Ctrl-C and kill included: a
# background job of a script ignores SIGINT, so without the trap a server would outlive the
# script. The client runs in the background too, so that a signal interrupts the script's wait.

SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-10}
HOST=127.0.0.1

server_pid=""
load_pid=""
next_port=${PORT_BASE:-19100}

pin_server=()
pin_load=()
if command -v taskset >/dev/null && taskset -c "$SERVER_CPU,$LOAD_CPU" true 2>/dev/null; then
  pin_server=(taskset -c "$SERVER_CPU")
  pin_load=(taskset -c "$LOAD_CPU")
else
  echo "note: cannot pin to CPUs $SERVER_CPU and $LOAD_CPU; server and load run unpinned" >&2
fi

server_binary() {
  case $1 in
    nbio | nbio_blocking | nbio_mixed) echo "$BIN/tcp_echo" ;;
    asio) echo "$BIN/asio_echo" ;;
    libuv) echo "$BIN/libuv_echo" ;;
    *) return 1 ;;
  esac
}

server_command() {
  local binary
  binary=$(server_binary "$1") || { echo "unknown server: $1" >&2; return 1; }
  cmd=("$binary" --host "$HOST" --port "$2")
  case $1 in
    nbio) cmd+=(--loops 1) ;;
    nbio_blocking) cmd+=(--loops 1 --io-mode blocking) ;;
    nbio_mixed) cmd+=(--loops 1 --io-mode mixed) ;;
  esac
}

next_free_port() {
  while ss -Htln "sport = :$next_port" 2>/dev/null | grep -q .; do
    next_port=$((next_port + 1))
  done
  port=$next_port
  next_port=$((next_port + 1))
}

start_server() {
  local log=$1
  shift
: >"$log"
  "${pin_server[@]}" "$@" </dev/null >"$log" 2>&1 &
  server_pid=$!
  local waited=0
  while ! grep -q '^listening on ' "$log"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      echo "    server exited before listening; last lines of $log:" >&2
      tail -n 5 "$log" | sed 's/^/      /' >&2
      return 1
    fi
    if [ "$waited" -ge $((STARTUP_TIMEOUT * 10)) ]; then
      echo "    server not listening after ${STARTUP_TIMEOUT}s (see $log)" >&2
      stop_server
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$server_pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "    server $server_pid ignored SIGTERM for 5 s: killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

run_load() {
  local limit=$1
  shift
  timeout -s INT -k 10 "$limit" "${pin_load[@]}" "$@" &
  load_pid=$!
  local rc=0
  wait "$load_pid" || rc=$?
  load_pid=""
  return "$rc"
}

stop_all() {
  if [ -n "$load_pid" ]; then
    kill -TERM "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=""
  fi
  stop_server
}

json_num() {
  { grep -o "\"$2\": *[-0-9.eE+]*" "$1" 2>/dev/null || true; } | head -n 1 | sed 's/.*: *//'
}

warn_if_busy() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load" 'BEGIN { exit !(l > 1.0) }'; then
    echo "note: load average is $load: other work is running and will skew the numbers" >&2
  fi
}

trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
