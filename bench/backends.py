#!/usr/bin/env python3
"""nbio on io_uring against nbio on epoll, in the same invocation (bench/run_backends.sh); with
COMPARE=tls, nbio's TLS 1.3 record layer against OpenSSL's (the same servers over TLS, with and
without --tls-no-handoff).

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
SERVER_CPU (0), LOAD_CPU (1), LOAD_BACKEND (epoll), COMPARE (backends, or tls).
With COMPARE=tls the two variants are `openssl` (every connection on OpenSSL after the
handshake) and `nbio` (TLS 1.3 connections on nbio's record layer), on epoll, with a
self-signed ECDSA certificate made here; the cells default to "ws-echo http ws-idle" (the
clients speak TLS: nbio-load --tls, wrk over https), CONNECTIONS to "100 1000".
Output: progress and a table of medians with the ratio io_uring / epoll (nbio / openssl) per
cell on stderr and stdout; every run and the medians in BUILD/bench/backends.json
(tls_paths.json); logs in BUILD/bench/backends/ (tls_paths/).
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
BIN = os.path.join(BUILD, "bin")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(BUILD, "bench")
COMPARE = os.environ.get("COMPARE", "backends")
TLS = COMPARE == "tls"
NAME = "tls_paths" if TLS else "backends"
LOGS = os.path.join(OUT, NAME)
DURATION = int(os.environ.get("DURATION", "3"))
WARMUP = int(os.environ.get("WARMUP", "1"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CELLS = os.environ.get("CELLS", "ws-echo http ws-idle" if TLS else
                       "tcp-echo ws-echo http tcp-idle ws-idle").split()
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "100 1000" if TLS else
                                              "100 5000 10000").split()]
IDLE = int(os.environ.get("IDLE", "15000"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
LOAD_BACKEND = os.environ.get("LOAD_BACKEND", "epoll")
HOST = "127.0.0.1"
CERT_DIR = tempfile.mkdtemp(prefix="nbio-bench-tls-") if TLS else None
# The compared variants: their names (the baseline first) and the server's extra arguments.
if TLS:
    _cert = ["--tls-cert", os.path.join(CERT_DIR or "", "server.pem"),
             "--tls-key", os.path.join(CERT_DIR or "", "server.key")]
    VARIANTS = {"openssl": ["--backend", "epoll"] + _cert + ["--tls-no-handoff"],
                "nbio": ["--backend", "epoll"] + _cert}
else:
    VARIANTS = {"epoll": ["--backend", "epoll"], "io_uring": ["--backend", "io_uring"]}
BACKENDS = list(VARIANTS)
TLS_LOAD = ["--tls", "--tls-insecure"] if TLS else []
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
          "--backend", LOAD_BACKEND, "--server-pid", str(server.proc.pid), "--json", js] + TLS_LOAD,
         DURATION + 180)
    j = read_json(js)
    cpu = j["server"]["cpu_percent"]
    return {"msgs_per_s": j["msgs_per_s"], "per_cpu_s": j["msgs_per_s"] * 100.0 / cpu if cpu else 0,
            "p99_ms": j["latency_ms"]["p99"], "errors": j["result"].get("errors", 0)}


def run_http(server, depth, name):
    args = ["wrk", "-t1", "-c100", "--latency", "-s", os.path.join(HERE, "http", "pipeline.lua"),
            f"{'https' if TLS else 'http'}://{HOST}:{server.port}/", "--", str(depth)]
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
          "--server-pid", str(server.proc.pid), "--json", js] + TLS_LOAD, 300)
    return {"bytes_per_conn": read_json(js)["server"]["rss_per_conn_bytes"]}


def cells():
    for cell in CELLS:
        if TLS and cell.startswith("tcp"):
            log(f"  {cell}: skipped (its clients speak no TLS)")
            continue
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


def make_cert():
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", os.path.join(CERT_DIR, "server.key"),
                    "-out", os.path.join(CERT_DIR, "server.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    os.makedirs(LOGS, exist_ok=True)
    if TLS:
        make_cert()
    runs = []
    plan = list(cells())
    log(f"{NAME}: {ROUNDS} rounds x {len(plan)} cells x {len(BACKENDS)} variants, "
        f"{DURATION}s per run; server on CPU {SERVER_CPU}, load on CPU {LOAD_CPU} ({LOAD_BACKEND})")
    failed = False
    for rnd in range(1, ROUNDS + 1):
        for cell, label, binary, fn in plan:
            for backend in BACKENDS:
                name = f"{cell}-{label.split()[0]}-{label.split()[-1]}-{backend}-r{rnd}".replace(" ", "_")
                argv = [os.path.join(BIN, binary), "--host", HOST, "--port", "0", "--loops", "1"]
                argv += VARIANTS[backend]
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
            base, other = BACKENDS
            e, u = med[base][key], med[other][key]
            row["ratio_key"] = key
            row["ratio"] = u / e if e else None
            if "msgs_per_s" in med[base]:
                row["msgs_per_s_ratio"] = (med[other]["msgs_per_s"] / med[base]["msgs_per_s"]
                                           if med[base]["msgs_per_s"] else None)
        rows.append(row)

    print(f"\n{'cell':9} {'':24} {BACKENDS[0]:>12} {BACKENDS[1]:>12} {'ratio':>7}   {'msgs/s ratio':>12}")
    for row in rows:
        med = row["median"]
        if len(med) != 2:
            print(f"{row['cell']:9} {row['label']:24} {'-':>12} {'-':>12}")
            continue
        key = row["ratio_key"]
        unit = "B/conn" if key == "bytes_per_conn" else "per CPU-s"
        extra = f"{row['msgs_per_s_ratio']:12.2f}x" if row.get("msgs_per_s_ratio") else ""
        print(f"{row['cell']:9} {row['label']:24} {med[BACKENDS[0]][key]:12.0f} {med[BACKENDS[1]][key]:12.0f} "
              f"{row['ratio']:6.2f}x   {extra}  ({unit})")
    if CERT_DIR:
        shutil.rmtree(CERT_DIR, ignore_errors=True)
    with open(os.path.join(OUT, NAME + ".json"), "w") as f:
        json.dump({"benchmark": NAME, "variants": BACKENDS, "duration_s": DURATION, "rounds": ROUNDS,
                   "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU, "load_backend": LOAD_BACKEND,
                   "nproc": os.cpu_count(), "kernel": os.uname().release, "runs": runs,
                   "cells": rows}, f, indent=1)
    print(f"\nwrote {os.path.join(OUT, NAME + '.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
