#!/usr/bin/env python3
"""nbio on io_uring against nbio on epoll, in the same invocation (bench/run_backends.sh).

For every cell, a server pinned to SERVER_CPU is started once per back-end (--backend epoll,
then io_uring, interleaved within each round) and loaded from LOAD_CPU by the same client:
  tcp-echo  tcp_echo --loops 1, echo_load (one 64 B message in flight per connection)
  ws-echo   ws_echo --loops 1, nbio-load --mode ws-echo --ramp-first (masked binary messages,
            every echo checked)
  http      http_hello --loops 1, wrk -t1 -c100 GET / (keep-alive, and pipelined x16 with
            bench/http/pipeline.lua)
  tcp-idle  tcp_echo --loops 1, tcp_idle: VmRSS growth per idle connection (one byte echoed)
  ws-idle   ws_echo --loops 1, nbio-load --mode ws-idle: VmRSS growth per idle WebSocket
The load generator keeps its default back-end (LOAD_BACKEND, epoll), so the server is the only
thing that changes. With one load core the client often limits msgs/s for both back-ends
alike: messages (requests) per second of server CPU, from /proc/PID/stat, compare servers.

Environment: DURATION (3 s), WARMUP (1 s, tcp-echo and http), ROUNDS (3), CELLS (all of
"tcp-echo ws-echo http tcp-idle ws-idle"), CONNECTIONS ("100 5000 10000"), IDLE (15000),
SERVER_CPU (0), LOAD_CPU (1), LOAD_BACKEND (epoll).
Output: progress and a table of medians with the ratio io_uring / epoll per cell on stderr and
stdout; every run and the medians in BUILD/bench/backends.json; logs in BUILD/bench/backends/.
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
BIN = os.path.join(BUILD, "bin")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(BUILD, "bench")
LOGS = os.path.join(OUT, "backends")
DURATION = int(os.environ.get("DURATION", "3"))
WARMUP = int(os.environ.get("WARMUP", "1"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CELLS = os.environ.get("CELLS", "tcp-echo ws-echo http tcp-idle ws-idle").split()
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "100 5000 10000").split()]
IDLE = int(os.environ.get("IDLE", "15000"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
LOAD_BACKEND = os.environ.get("LOAD_BACKEND", "epoll")
BACKENDS = ["epoll", "io_uring"]
HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class Server:
    def __init__(self, argv, logname):
        env = dict(os.environ)
        env.pop("NBIO_BACKEND", None)  # --backend decides
        self.log = open(os.path.join(LOGS, logname), "w")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on .*:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start: {line!r}")
        self.port = int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def load(argv, timeout, env=None):
    return subprocess.run(["taskset", "-c", LOAD_CPU] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run_tcp_echo(server, conns, name):
    js = os.path.join(LOGS, name + ".json")
    load([os.path.join(BIN, "echo_load"), "--host", HOST, "--port", str(server.port),
          "--connections", str(conns), "--size", "64", "--duration", str(DURATION),
          "--warmup", str(WARMUP), "--server-pid", str(server.proc.pid), "--json", js],
         DURATION + WARMUP + 120)
    j = read_json(js)
    return {"msgs_per_s": j["msgs_per_sec"], "per_cpu_s": j["msgs_per_server_cpu_s"],
            "p99_ms": j["p99_us"] / 1000.0, "errors": j.get("errors", 0)}


def run_ws_echo(server, conns, name):
    js = os.path.join(LOGS, name + ".json")
    load([os.path.join(BIN, "nbio-load"), "--mode", "ws-echo", "--path", "/ws", "-p",
          str(server.port), "-c", str(conns), "-s", "64", "-d", str(DURATION), "--ramp-first",
          "--backend", LOAD_BACKEND, "--server-pid", str(server.proc.pid), "--json", js],
         DURATION + 180)
    j = read_json(js)
    cpu = j["server"]["cpu_percent"]
    return {"msgs_per_s": j["msgs_per_s"], "per_cpu_s": j["msgs_per_s"] * 100.0 / cpu if cpu else 0,
            "p99_ms": j["latency_ms"]["p99"], "errors": j["result"].get("errors", 0)}


def run_http(server, depth, name):
    args = ["wrk", "-t1", "-c100", "--latency", "-s", os.path.join(HERE, "http", "pipeline.lua"),
            f"http://{HOST}:{server.port}/", "--", str(depth)]
    env = {"WRK_CONNECTIONS": "100"}  # pipeline.lua's latency correction needs it
    load(args[:3] + ["-d", f"{WARMUP}s"] + args[3:], WARMUP + 60, env)
    before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    r = load(args[:3] + ["-d", f"{DURATION}s"] + args[3:], DURATION + 60, env)
    cpu, wall = cpu_seconds(server.proc.pid) - before, time.monotonic() - t0
    with open(os.path.join(LOGS, name + ".wrk.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    rps = float(m.group(1)) if m else 0.0
    # wrk counts every response, pipelined or not: Requests/sec is per request.
    errors = len(re.findall(r"Non-2xx|Socket errors", r.stdout))
    return {"msgs_per_s": rps, "per_cpu_s": rps * wall / cpu if cpu > 0 else 0, "errors": errors}


def run_tcp_idle(server, conns, name):
    js = os.path.join(LOGS, name + ".json")
    load([os.path.join(BIN, "tcp_idle"), "--host", HOST, "--port", str(server.port),
          "--connections", str(conns), "--server-pid", str(server.proc.pid), "--json", js], 300)
    return {"bytes_per_conn": read_json(js)["bytes_per_connection"]}


def run_ws_idle(server, conns, name):
    js = os.path.join(LOGS, name + ".json")
    load([os.path.join(BIN, "nbio-load"), "--mode", "ws-idle", "--path", "/ws", "-p",
          str(server.port), "-c", str(conns), "-d", "3", "--backend", LOAD_BACKEND,
          "--server-pid", str(server.proc.pid), "--json", js], 300)
    return {"bytes_per_conn": read_json(js)["server"]["rss_per_conn_bytes"]}


def cells():
    for cell in CELLS:
        if cell == "tcp-echo":
            for c in CONNECTIONS:
                yield cell, f"{c} conns x 64 B", "tcp_echo", lambda s, n, c=c: run_tcp_echo(s, c, n)
        elif cell == "ws-echo":
            for c in CONNECTIONS:
                yield cell, f"{c} conns x 64 B", "ws_echo", lambda s, n, c=c: run_ws_echo(s, c, n)
        elif cell == "http":
            if not shutil.which("wrk"):
                log("  http: skipped (wrk is not installed)")
                continue
            for depth in (1, 16):
                label = "keep-alive" if depth == 1 else f"pipelined x{depth}"
                yield cell, f"100 conns {label}", "http_hello", lambda s, n, d=depth: run_http(s, d, n)
        elif cell == "tcp-idle":
            yield cell, f"{IDLE} idle conns", "tcp_echo", lambda s, n: run_tcp_idle(s, IDLE, n)
        elif cell == "ws-idle":
            yield cell, f"{IDLE} idle conns", "ws_echo", lambda s, n: run_ws_idle(s, IDLE, n)


def main():
    os.makedirs(LOGS, exist_ok=True)
    runs = []
    plan = list(cells())
    log(f"backends: {ROUNDS} rounds x {len(plan)} cells x {len(BACKENDS)} back-ends, "
        f"{DURATION}s per run; server on CPU {SERVER_CPU}, load on CPU {LOAD_CPU} ({LOAD_BACKEND})")
    failed = False
    for rnd in range(1, ROUNDS + 1):
        for cell, label, binary, fn in plan:
            for backend in BACKENDS:
                name = f"{cell}-{label.split()[0]}-{label.split()[-1]}-{backend}-r{rnd}".replace(" ", "_")
                argv = [os.path.join(BIN, binary), "--host", HOST, "--port", "0", "--loops", "1",
                        "--backend", backend]
                log(f"  round {rnd} {cell:8} {label:24} {backend:8} ...")
                try:
                    server = Server(argv, name + ".server.log")
                except Exception as e:  # noqa: BLE001
                    log(f"    failed: {e}")
                    failed = True
                    continue
                try:
                    result = fn(server, name)
                except Exception as e:  # noqa: BLE001
                    log(f"    failed: {e}")
                    failed = True
                    result = None
                finally:
                    server.stop()
                if result is not None:
                    runs.append({"cell": cell, "label": label, "backend": backend, "round": rnd,
                                 **result})
                    log("    " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in result.items()))

    table, rows = [], []
    for cell, label, _, _ in plan:
        med = {}
        for backend in BACKENDS:
            rs = [r for r in runs if r["cell"] == cell and r["label"] == label and r["backend"] == backend]
            if rs:
                med[backend] = {k: statistics.median(r[k] for r in rs)
                                for k in rs[0] if k not in ("cell", "label", "backend", "round")}
        row = {"cell": cell, "label": label, "median": med}
        if len(med) == 2:
            key = "bytes_per_conn" if cell.endswith("idle") else "per_cpu_s"
            e, u = med["epoll"][key], med["io_uring"][key]
            row["ratio_key"] = key
            row["ratio"] = u / e if e else None
            if "msgs_per_s" in med["epoll"]:
                row["msgs_per_s_ratio"] = (med["io_uring"]["msgs_per_s"] / med["epoll"]["msgs_per_s"]
                                           if med["epoll"]["msgs_per_s"] else None)
        rows.append(row)

    print(f"\n{'cell':9} {'':24} {'epoll':>12} {'io_uring':>12} {'ratio':>7}   {'msgs/s ratio':>12}")
    for row in rows:
        med = row["median"]
        if len(med) != 2:
            print(f"{row['cell']:9} {row['label']:24} {'-':>12} {'-':>12}")
            continue
        key = row["ratio_key"]
        unit = "B/conn" if key == "bytes_per_conn" else "per CPU-s"
        extra = f"{row['msgs_per_s_ratio']:12.2f}x" if row.get("msgs_per_s_ratio") else ""
        print(f"{row['cell']:9} {row['label']:24} {med['epoll'][key]:12.0f} {med['io_uring'][key]:12.0f} "
              f"{row['ratio']:6.2f}x   {extra}  ({unit})")
    with open(os.path.join(OUT, "backends.json"), "w") as f:
        json.dump({"benchmark": "backends", "duration_s": DURATION, "rounds": ROUNDS,
                   "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU, "load_backend": LOAD_BACKEND,
                   "nproc": os.cpu_count(), "kernel": os.uname().release, "runs": runs,
                   "cells": rows}, f, indent=1)
    print(f"\nwrote {os.path.join(OUT, 'backends.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
