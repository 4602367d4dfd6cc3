#!/usr/bin/env bash
# The Autobahn server cases against examples/ws_hello (the 15-line echo, its defaults as they
# are): usage  ws_hello_autobahn.sh BIN_DIR PORT REPORT_DIR
# Groups 1-11, every case: the protocol, UTF-8, limits, fragmentation, closing, and group 9's
# 16 MiB echoes. Groups 12 and 13 are permessage-deflate, which ws_hello does not enable (the
# in-process run, autobahn_server.*, plays them against a server that does). Starts ws_hello on
# 127.0.0.1:PORT, plays the cases through nbio_conformance_tests (NBIO_AUTOBAHN_SERVER) and
# stops it; the exit status is the test's.
set -uo pipefail
bin="${1:?usage: ws_hello_autobahn.sh BIN_DIR PORT REPORT_DIR}"
port="${2:?port}"
report="${3:?report dir}"
mkdir -p "$report"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port $port is taken: the cases would play against another server"
  exit 1
fi
"$bin/ws_hello" "$port" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
for _ in $(seq 100); do  # until it listens (at most 5 s)
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "ws_hello exited before listening"; exit 1; }
  sleep 0.05
done
sleep 0.2
kill -0 "$server" 2>/dev/null || { echo "ws_hello exited (port $port taken?)"; exit 1; }
NBIO_AUTOBAHN_SERVER="127.0.0.1:$port" NBIO_AUTOBAHN_FILTER="1.,2.,3.,4.,5.,6.,7.,8.,9.,10.,11." \
  NBIO_AUTOBAHN_REPORT_DIR="$report" \
  "$bin/nbio_conformance_tests" --gtest_filter='autobahn_server.every_case_passes_or_is_a_known_failure'
