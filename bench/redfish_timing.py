"""Redfish timings, side by side: how long a dead BMC takes to fail (sushy's defaults vs our
explicit policy), how long a hung one takes (it accepts the connection and never answers: the read
timeout times the attempts, plus the back-off; about two minutes with hosts.yaml's defaults), and
how long a full pre-OS inspection of each seed host's mockup takes.

Run: .venv/bin/python -m bench.redfish_timing   (loopback only; starts sushy-static itself)
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path

import sushy
from sushy import exceptions as sx

from provision.bmc.credentials import Credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import connect
from provision.model.catalog import load_catalog
from provision.model.errors import BmcError
from provision.model.hosts import Bmc
from tests.support.mockup import Style, build_tree, write_tree
from tests.support.procs import free_port
from tests.support.redfish_rig import static

REPO = Path(__file__).resolve().parent.parent
CREDS = Credentials("admin", "bench")


def dead_bmc() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    start = time.monotonic()
    with contextlib.suppress(sx.ConnectionError):
        sushy.Sushy(url, username="admin", password="bench")
    sushy_s = time.monotonic() - start
    rows = [("sushy defaults (10 retries x 3 s)", sushy_s)]
    for label, bmc in [
        ("ours, hosts.yaml defaults (4 attempts, 1-2-4 s)", Bmc(url=url, credentials="env:X")),
        (
            "ours, test tuning (3 attempts, 0.2 s)",
            Bmc(url=url, credentials="env:X", attempts=3, retry_delay_s=0.2),
        ),
    ]:
        start = time.monotonic()
        with contextlib.suppress(BmcError), connect(bmc, credentials=CREDS):
            pass
        rows.append((label, time.monotonic() - start))
    print("dead BMC (connection refused): time to a clear error")
    for label, s in rows:
        print(f"  {label:<52} {s:6.2f} s   ratio to sushy {s / sushy_s:5.2f}")


def hung_bmc() -> None:
    with socket.socket() as listener:  # accepts (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        print("hung BMC (accepts, never answers): time to a clear error")
        for label, bmc in [
            ("ours, hosts.yaml defaults (4 attempts, 30 s reads)", Bmc(url=url, credentials="env:X")),
            (
                "ours, test tuning (3 attempts, 0.2 s, 2 s reads)",
                Bmc(url=url, credentials="env:X", attempts=3, retry_delay_s=0.2, read_timeout_s=2.0),
            ),
        ]:
            start = time.monotonic()
            with contextlib.suppress(BmcError), connect(bmc, credentials=CREDS):
                pass
            print(f"  {label:<52} {time.monotonic() - start:6.2f} s")


def inspection() -> None:
    catalog = load_catalog(REPO / "profiles")
    print("full inspection through sushy-static (GETs of every resource), per seed host and layout")
    with tempfile.TemporaryDirectory() as tmp:
        for name, host in sorted(catalog.hosts.items()):
            for style in Style:
                tree = build_tree(catalog.profile_of(host), host, style)
                root = write_tree(tree, Path(tmp) / f"{name}-{style.value}")
                with static(root, Path(tmp) / "static.log") as svc:
                    bmc = Bmc(url=svc.url, credentials="env:X", auth="basic")
                    start = time.monotonic()
                    with connect(bmc, credentials=CREDS) as client:
                        inv = collect_inventory(client.try_json)
                    took = time.monotonic() - start
                print(
                    f"  {name:<24} {style.value:<10} {len(tree):3d} resources  {took:5.2f} s  "
                    f"({len(inv.dimms)} DIMM slots, {len(inv.gpus)} GPUs, {len(inv.drives)} drives)"
                )


def main() -> None:
    dead_bmc()
    hung_bmc()
    inspection()


if __name__ == "__main__":
    main()
    sys.exit(0)
