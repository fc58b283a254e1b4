"""Benchmark: an installer's request to the boot server with 0 vs 1,000 idle connections open.

Run: .venv/bin/python bench/bootserver_load.py [IDLE]   (no root, loopback only, ~10 s)
The installer's request is `GET /ks/HOST?token=T` (a kickstart rendered for a running install, the
heaviest small answer), one at a time on a fresh connection, REQUESTS times; median and p99 latency
with no other connection open, with IDLE (1,000) idle connections open (half never send a byte,
half an unfinished head), and with IDLE slowloris connections (each sends one more byte of its
head every second). Client and server share this process, so RLIMIT_NOFILE is raised (soft limit,
up to the hard one) to hold both ends. Writes build/bench/bootserver_load.json.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provision.install.bootserver import BootServer
from provision.model.catalog import default_profiles_dir, load_catalog
from provision.store.state import StateStore

REQUESTS = 200
HOST = "inferno-host-compute-1"
OUT = Path(__file__).resolve().parent.parent / "build" / "bench" / "bootserver_load.json"


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(hard, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return max(soft, want)


def latencies_ms(port: int, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        out.append((time.perf_counter() - start) * 1000)
        if resp.status != 200 or not body:
            raise SystemExit(f"unexpected answer {resp.status}")
    return out


def open_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if i % 2:
            s.sendall(b"GET /ks/x HTTP/1.1\r\nHost: boot\r\n")
        socks.append(s)
    return socks


def trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One byte per connection per second, spread over the second."""
    while not stop.is_set():
        for s in socks:
            if stop.wait(1.0 / len(socks)):
                return
            with contextlib.suppress(OSError):
                s.send(b"X")


def measure(srv: BootServer, path: str, idle: int, slowloris: bool) -> dict[str, float | int]:
    socks = open_idle(srv.port, idle)
    stop = threading.Event()
    trickler = (
        threading.Thread(target=trickle, args=(socks, stop), daemon=True) if slowloris and socks else None
    )
    try:
        deadline = time.monotonic() + 30
        while srv.http.pending_heads < idle and time.monotonic() < deadline:
            time.sleep(0.05)
        held_before = srv.http.pending_heads
        if trickler is not None:
            trickler.start()
        ms = latencies_ms(srv.port, path, REQUESTS)
        held_after = srv.http.pending_heads
    finally:
        stop.set()
        if trickler is not None:
            trickler.join()
        for s in socks:
            s.close()
    deadline = time.monotonic() + 30
    while srv.http.pending_heads and time.monotonic() < deadline:
        time.sleep(0.05)
    ms.sort()
    return {
        "idle_open": min(held_before, held_after),
        "median_ms": statistics.median(ms),
        "p99_ms": ms[int(len(ms) * 0.99) - 1],
        "max_ms": ms[-1],
    }


def main() -> None:
    idle = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000
    limit = raise_fd_limit(2 * idle + 256)
    if limit < 2 * idle + 128:
        idle = max(0, (limit - 128) // 2)
        print(f"RLIMIT_NOFILE allows {limit} descriptors: {idle} idle connections")
    catalog = load_catalog(default_profiles_dir())
    with tempfile.TemporaryDirectory() as tmp, StateStore.open(Path(tmp)) as store:
        run = store.create_run(HOST, "install")
        path = f"/ks/{HOST}?token={store.issue_token(run.id, HOST, 600)}"
        with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
            latencies_ms(srv.port, path, 20)  # warm up
            rows = {
                "none": measure(srv, path, 0, False),
                f"{idle} idle": measure(srv, path, idle, False),
                f"{idle} slowloris": measure(srv, path, idle, True),
            }
    base = rows["none"]
    print(f"GET /ks x{REQUESTS}, one at a time; open: the other connections held while measuring")
    print("  other connections        open   median ms   p99 ms   max ms   median ratio   p99 ratio")
    for name, row in rows.items():
        med = float(row["median_ms"]) / float(base["median_ms"])
        p99 = float(row["p99_ms"]) / float(base["p99_ms"])
        print(
            f"  {name:<22} {row['idle_open']:>6}   {row['median_ms']:9.2f}   {row['p99_ms']:6.2f}"
            f"   {row['max_ms']:6.2f}   {med:11.2f}x   {p99:8.2f}x"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"requests": REQUESTS, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
