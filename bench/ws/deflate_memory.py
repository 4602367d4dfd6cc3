#!/usr/bin/python3
"""Server memory per WebSocket connection under each permessage-deflate memory policy.

usage: bench/ws/deflate_memory.py [BUILD]      BUILD: the build directory (default: build)

For each policy (none: no deflate; shared; dedicated; sliding with --max-dedicated HALF) start
BUILD/bin/ws_echo --loops 1 --deflate --deflate-memory POLICY --deflate-threshold 0, open
CONNECTIONS connections with Python's websockets (Debian python3-websockets; it offers
permessage-deflate with client_max_window_bits), send one compressible 1 KiB text message on each
and wait for its echo (so every connection has compressed and inflated once: a dedicated stream
exists from then on), and read the server's VmRSS before the connections and once they are all
idle again. The growth divided by CONNECTIONS is the cost per connection. A warm-up run of 200
connections first pays the one-time costs (libcrypto, zlib's tables, the thread's shared
streams).

Environment: CONNECTIONS (2000). Output: a table, and BUILD/bench/ws_deflate_memory.json.
"""
import asyncio
import json
import os
import re
import subprocess
import sys
import time

import websockets

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CONNECTIONS = int(os.environ.get("CONNECTIONS", "2000"))
MESSAGE = ('{"symbol":"EURUSD","bid":1.0841,"ask":1.0843,"ts":1700000000123} ' * 16)[:1024]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


async def hold(url, n):
    conns = []
    for i in range(0, n, 200):
        batch = await asyncio.gather(
            *[websockets.connect(url, max_size=None) for _ in range(min(200, n - i))])
        conns.extend(batch)
    await asyncio.gather(*[c.send(MESSAGE) for c in conns])
    echoes = await asyncio.gather(*[c.recv() for c in conns])
    assert all(e == MESSAGE for e in echoes), "an echo differs"
    negotiated = sum(1 for c in conns if c.extensions)
    return conns, negotiated


async def measure(policy):
    args = [f"{BUILD}/bin/ws_echo", "--port", "0", "--loops", "1"]
    if policy != "none":
        args += ["--deflate", "--deflate-memory", policy, "--deflate-threshold", "0",
                 "--max-dedicated", str(CONNECTIONS // 2)]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = server.stdout.readline().strip().rsplit(":", 1)[1]
        url = f"ws://127.0.0.1:{port}/ws"
        warm, _ = await hold(url, 200)  # one-time costs
        await asyncio.gather(*[c.close() for c in warm])
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        conns, negotiated = await hold(url, CONNECTIONS)
        await asyncio.sleep(0.5)
        after = rss_kib(server.pid)
        await asyncio.gather(*[c.close() for c in conns])
        return {"policy": policy, "connections": CONNECTIONS, "negotiated": negotiated,
                "rss_before_kib": before, "rss_after_kib": after,
                "bytes_per_connection": round((after - before) * 1024 / CONNECTIONS)}
    finally:
        server.terminate()
        server.wait()


async def main():
    results = []
    for policy in ["none", "shared", "dedicated", "sliding"]:
        started = time.time()
        r = await measure(policy)
        r["seconds"] = round(time.time() - started, 1)
        results.append(r)
        print(f"  {policy:10} {r['negotiated']:6} negotiated  "
              f"{r['bytes_per_connection']:9,} bytes/conn", flush=True)
    os.makedirs(f"{BUILD}/bench", exist_ok=True)
    with open(f"{BUILD}/bench/ws_deflate_memory.json", "w") as f:
        json.dump({"benchmark": "ws_deflate_memory", "results": results}, f, indent=1)
    print(json.dumps(results))


print(f"server RSS per WebSocket connection after one 1 KiB message each, {CONNECTIONS} "
      "connections (ws_echo --loops 1 --deflate-threshold 0):")
asyncio.run(main())
