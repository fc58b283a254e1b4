"""Requests per pre-OS inspection of the compute host, counted by the server: the walker on the plain
GET (as before the resource cache), through the cache on a service without `$expand` (one request
per resource at most), and through the cache where the service root offers ExpandQuery
(`$expand=.($levels=1)`: a collection with its members in one request). Same inventory each way.

The server is `tests.support.expand_server` (sushy-static has no $expand), on loopback, each GET
answered `DELAY_S` late to stand for a real BMC's 0.2-2 s: the times show what the request counts
and the small pool cost there, the counts are what the README quotes.

Run: .venv/bin/python -m bench.redfish_requests   (writes build/bench/redfish_requests.json)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.bmc.credentials import Credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import BmcClient, connect
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from tests.support.expand_rig import ExpandService, expand_service
from tests.support.mockup import Style, build_tree, write_tree

REPO = Path(__file__).resolve().parent.parent
HOST = "inferno-host-compute-1"
DELAY_S = 0.02
CREDS = Credentials("admin", "bench")


def _run(svc: ExpandService, read: Callable[[BmcClient], Any]) -> tuple[int, float, dict[str, Any]]:
    svc.reset()
    bmc = Bmc(url=svc.url, credentials="env:UNUSED", auth="basic")
    start = time.monotonic()
    with connect(bmc, credentials=CREDS) as client:
        inv = read(client)
    took = time.monotonic() - start
    return len(svc.requests()), took, inv.to_dict() | {"collected_at": 0}


def _uncached(client: BmcClient) -> Any:
    return collect_inventory(client.try_json)


def _cached(workers: int) -> Callable[[BmcClient], Any]:
    def read(client: BmcClient) -> Any:
        with client.resources(workers=workers) as fetch:
            return collect_inventory(fetch)

    return read


def main() -> None:
    catalog = load_catalog(REPO / "profiles")
    host = catalog.host(HOST)
    rows: list[dict[str, Any]] = []
    print(f"GET requests for one full inspection of {HOST}, counted by the server ({DELAY_S} s per GET)")
    head = f"{'layout':<10} {'resources':>9} {'before':>7} {'plain':>7} {'$expand':>8} {'ratio':>6}"
    print(f"  {head}   times (s)")
    with tempfile.TemporaryDirectory() as tmp:
        for style in Style:
            work = Path(tmp) / style.value
            mockup = write_tree(build_tree(catalog.profile_of(host), host, style), work / "mockup")
            resources = len(list(mockup.rglob("index.json")))
            with expand_service(mockup, work, expand=False, delay_s=DELAY_S) as plain_svc:
                before, before_s, inv_before = _run(plain_svc, _uncached)
                plain1, plain1_s, inv_plain = _run(plain_svc, _cached(1))
                plain4, plain4_s, _ = _run(plain_svc, _cached(4))
            with expand_service(mockup, work, expand=True, delay_s=DELAY_S) as svc:
                expanded, expanded_s, inv_expanded = _run(svc, _cached(4))
            same = inv_before == inv_plain == inv_expanded
            row = {
                "layout": style.value,
                "resources": resources,
                "before": before,
                "plain": plain1,
                "plain_pool4": plain4,
                "expand": expanded,
                "ratio_plain_to_expand": round(plain1 / expanded, 2),
                "seconds": {
                    "before": round(before_s, 2),
                    "plain": round(plain1_s, 2),
                    "plain_pool4": round(plain4_s, 2),
                    "expand": round(expanded_s, 2),
                },
                "same_inventory": same,
            }
            rows.append(row)
            print(
                f"  {style.value:<10} {resources:>9} {before:>7} {plain1:>7} {expanded:>8} "
                f"{plain1 / expanded:>5.1f}x   before {before_s:.2f}, plain {plain1_s:.2f}, "
                f"plain+pool(4) {plain4_s:.2f}, $expand {expanded_s:.2f}"
                + ("" if same else "   INVENTORIES DIFFER")
            )
    out = REPO / "build" / "bench" / "redfish_requests.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"host": HOST, "delay_s": DELAY_S, "rows": rows}, indent=2) + "\n")
    print(f"  (written to {out.relative_to(REPO)})")


if __name__ == "__main__":
    main()
    sys.exit(0)
