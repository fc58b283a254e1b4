"""Foundation figures, side by side: catalog loading (YAML walk by re-parsing each node versus by
constructing it; pure-Python versus libyaml composing), lint, and state-store writes from one
thread, four threads and two processes.

Run: .venv/bin/python -m bench.foundation
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from provision.lint.catalog import lint_catalog
from provision.model import yamlfile
from provision.model.catalog import default_profiles_dir, load_catalog
from provision.store.state import StateStore

EVENTS = 2000


def _per_call_s(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def _walk_by_reparsing(node: yaml.Node) -> Any:
    """The first version of the YAML walk: serialise each node and parse it again."""
    if isinstance(node, yaml.MappingNode):
        return {yaml.safe_load(yaml.serialize(k)): _walk_by_reparsing(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_walk_by_reparsing(item) for item in node.value]
    return yaml.safe_load(yaml.serialize(node))


def _write_events(state_dir: Path, n: int, tag: str) -> None:
    with StateStore.open(state_dir) as store:
        for i in range(n):
            store.add_event("inferno-host-compute-1", "sample", {"by": tag, "i": i})


def main() -> None:
    profiles = default_profiles_dir()
    lust = (profiles / "circle-2-lust.yaml").read_text()
    root = yaml.compose(lust, Loader=yaml.SafeLoader)
    old = _per_call_s(lambda: _walk_by_reparsing(root), 20)
    new = _per_call_s(lambda: yamlfile._walk(root, (), {}, Path("x")), 20)
    print(
        f"YAML walk of circle-2-lust.yaml: re-parse {old * 1e3:.1f} ms, construct {new * 1e3:.1f} ms "
        f"(x{old / new:.1f})"
    )
    pure = _per_call_s(lambda: yaml.compose(lust, Loader=yaml.SafeLoader), 20)
    fast = _per_call_s(lambda: yaml.compose(lust, Loader=yamlfile._FAST_LOADER), 20)
    print(
        f"YAML compose of circle-2-lust.yaml: pure Python {pure * 1e3:.1f} ms, "
        f"{yamlfile._FAST_LOADER.__name__} {fast * 1e3:.1f} ms (x{pure / fast:.1f})"
    )
    load = _per_call_s(lambda: load_catalog(profiles), 10)
    catalog = load_catalog(profiles)
    lint = _per_call_s(lambda: lint_catalog(catalog), 50)
    print(f"load_catalog (3 profiles + hosts): {load * 1e3:.1f} ms; lint_catalog: {lint * 1e3:.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one"
        start = time.perf_counter()
        _write_events(one, EVENTS, "main")
        single = EVENTS / (time.perf_counter() - start)

        threaded = Path(tmp) / "threads"
        with StateStore.open(threaded) as store:

            def work(tag: int) -> None:
                for i in range(EVENTS // 4):
                    store.add_event("inferno-host-compute-1", "sample", {"by": tag, "i": i})

            threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            four = EVENTS / (time.perf_counter() - start)

        shared = Path(tmp) / "procs"
        StateStore.open(shared).close()
        procs = [
            multiprocessing.Process(target=_write_events, args=(shared, EVENTS // 2, f"p{n}"))
            for n in range(2)
        ]
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        two = EVENTS / (time.perf_counter() - start)
        with StateStore.open(shared) as store:
            if len(store.events()) != EVENTS:
                raise SystemExit(f"lost events: {len(store.events())} of {EVENTS}")
    print(
        f"state store, committed events/s: 1 thread {single:.0f}, 4 threads {four:.0f} "
        f"(x{four / single:.2f}), 2 processes {two:.0f} (x{two / single:.2f})"
    )


if __name__ == "__main__":
    main()
