"""Benchmark: kickstart rendering and the boot server's answers, side by side.

Run: .venv/bin/python bench/bootchain.py   (no root, loopback only, ~10 s)
Prints per-host render time, and the server's kickstart throughput with 1 client vs 8 concurrent
clients (the ratio shows whether concurrent installers are served in parallel or queue up).
"""

from __future__ import annotations

import http.client
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provision.install.bootserver import BootServer
from provision.install.render import kickstart_for
from provision.model.catalog import default_profiles_dir, load_catalog
from provision.store.state import StateStore

RENDERS = 200
REQUESTS = 400


def render_ms(catalog_dir: Path) -> dict[str, float]:
    catalog = load_catalog(catalog_dir)
    out = {}
    for name, host in sorted(catalog.hosts.items()):
        start = time.perf_counter()
        for _ in range(RENDERS):
            kickstart_for(catalog, host, "BENCH-TOKEN-000000", "http://10.0.1.5:8080")
        out[name] = (time.perf_counter() - start) / RENDERS * 1000
    return out


def throughput(port: int, paths: list[str], workers: int) -> float:
    def get(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(pool.map(get, paths))
    elapsed = time.perf_counter() - start
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {set(statuses)}")
    return len(paths) / elapsed


def main() -> None:
    profiles = default_profiles_dir()
    for host, ms in render_ms(profiles).items():
        print(f"render_kickstart {host:<24} {ms:6.2f} ms")
    catalog = load_catalog(profiles)
    with tempfile.TemporaryDirectory() as tmp, StateStore.open(Path(tmp)) as store:
        paths = []
        for name in sorted(catalog.hosts):
            run = store.create_run(name, "install")
            token = store.issue_token(run.id, name, 600)
            paths.append(f"/ks/{name}?token={token}")
        work = [paths[i % len(paths)] for i in range(REQUESTS)]
        with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
            one = throughput(srv.port, work, 1)
            eight = throughput(srv.port, work, 8)
    print(f"GET /ks  1 client   {one:7.1f} req/s")
    print(f"GET /ks  8 clients  {eight:7.1f} req/s  (ratio {eight / one:.2f}x)")


if __name__ == "__main__":
    main()
