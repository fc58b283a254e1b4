"""The state store on its two engines, side by side: SQLite (a file under the state dir) against a
real local PostgreSQL (tests.support.postgres: Unix socket, fsync=off, as the store's SQLite runs
with synchronous=NORMAL), for the writes a controller makes (a run and an event: two transactions),
from one process and from two at once (the two-process figure includes starting both interpreters),
and for the per-host lock (flock against a lease claim and release). Also `store migrate` of the
two-process store, rows per second, verification included.

Run: .venv/bin/python -m bench.store_pg
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from provision.store.state import StateStore
from provision.store.transfer import migrate_store
from tests.support.postgres import running_postgres

WRITES = 500
LOCKS = 300
HOST = "inferno-host-compute-1"
OUT = Path("build/bench/store_pg.json")


def _writes(target: str, n: int, kind: str) -> None:
    with StateStore.open(target) as store:
        for i in range(n):
            run = store.create_run(HOST, kind)
            store.add_event(HOST, "sample", {"i": i}, run.id)


def _writes_per_s(target: str, processes: int) -> float:
    StateStore.open(target).close()
    start = time.perf_counter()
    if processes == 1:
        _writes(target, WRITES, "w0")
    else:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_writes, args=(target, WRITES, f"w{n}")) for n in range(processes)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return processes * WRITES / (time.perf_counter() - start)


def _lock_ms(target: str) -> float:
    with StateStore.open(target) as store:
        start = time.perf_counter()
        for _ in range(LOCKS):
            with store.host_lock(HOST):
                pass
        return (time.perf_counter() - start) / LOCKS * 1000


def main() -> None:
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, running_postgres() as pg:
        root = Path(tmp)
        targets = {
            "sqlite": (str(root / "s1"), str(root / "s2")),
            "postgresql": (
                pg.url(pg.new_database(), root / "d1"),
                pg.url(pg.new_database(), root / "d2"),
            ),
        }
        for engine, (one, two) in targets.items():
            figures[engine] = {
                "writes_per_s_1_process": _writes_per_s(one, 1),
                "writes_per_s_2_processes": _writes_per_s(two, 2),
                "lock_ms": _lock_ms(one),
            }
        start = time.perf_counter()
        report = migrate_store(root / "s2", pg.url(pg.new_database(), root / "d3"))
        rows = sum(t.rows for t in report.source)
        figures["migrate"] = {"rows": rows, "rows_per_s": rows / (time.perf_counter() - start)}
    print(f"{'engine':<12}{'run+event/s 1 proc':>20}{'run+event/s 2 procs':>21}{'lock+unlock ms':>16}")
    for engine in ("sqlite", "postgresql"):
        f = figures[engine]
        print(
            f"{engine:<12}{f['writes_per_s_1_process']:>20.0f}{f['writes_per_s_2_processes']:>21.0f}"
            f"{f['lock_ms']:>16.2f}"
        )
    m = figures["migrate"]
    print(
        f"store migrate sqlite -> postgresql: {m['rows']:.0f} rows, {m['rows_per_s']:.0f} rows/s (verified)"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
