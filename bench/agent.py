"""The burn-in agent against the bare tools, side by side in one run on this machine:

1. CPU busy share of all CPUs (from /proc/stat) while the agent's CPU suite runs (target >= 97%).
2. The agent's triad (inside the memory suite) vs the same triad built and run alone (>= 90%).
3. The agent's fio (NVMe suite on a scratch file) vs plain fio with the agent's own job file (>= 95%).

Run: .venv/bin/python -m bench.agent   (writes build/bench/agent.json)
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from burnin.parse_tools import parse_fio
from burnin.runner import Runner

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "build" / "bench" / "agent.json"
CPU_S = 12
TRIAD_MIB, TRIAD_N = 256, 10
FIO_MIB, FIO_S = 512, 8


def _stat() -> tuple[int, int]:
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(vals), vals[3] + vals[4]


def _run(plan_suites: list[dict[str, Any]], work: Path, name: str) -> dict[str, Any]:
    plan = {"run_id": name, "host": "bench", "sample_interval_s": 1, "suites": plan_suites}
    from burnin.schema import to_dict

    return to_dict(Runner(plan, work / name).run())


def cpu_busy(work: Path) -> dict[str, Any]:
    """Busy share over the middle of the stress-ng phase (ramp at both ends left out)."""
    box: dict[str, Any] = {}
    th = threading.Thread(
        target=lambda: box.update(_run([{"suite": "cpu", "duration_s": CPU_S}], work, "cpu"))
    )
    th.start()
    events = work / "cpu" / "events.jsonl"
    while not (events.is_file() and '"evidence":"cpu.stress_ng"' in events.read_text()):
        time.sleep(0.1)
    time.sleep(1.5)
    t0, i0 = _stat()
    time.sleep(CPU_S - 4)
    t1, i1 = _stat()
    th.join()
    busy = 100.0 * (1 - (i1 - i0) / (t1 - t0))
    return {"metric": "CPU busy share during the CPU suite", "agent": round(busy, 1), "reference": 100.0,
            "ratio_pct": round(busy, 1), "target_pct": 97.0}  # fmt: skip


def triad(work: Path) -> dict[str, Any]:
    src = work / "triad.c"
    src.write_bytes(pkgutil.get_data("burnin", "triad.c") or b"")
    exe = work / "triad-ref"
    subprocess.run(["gcc", "-O3", "-fopenmp", "-o", str(exe), str(src), "-lm"], check=True)
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(len(os.sched_getaffinity(0))),
        OMP_PROC_BIND="spread",
        OMP_PLACES="threads",
    )

    def alone() -> float:
        out = subprocess.run(
            [str(exe), str(TRIAD_MIB << 20), str(TRIAD_N)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(json.loads(out.stdout)["triad_gbs"])

    opts = {
        "max_mib": 4 * TRIAD_MIB + 256,
        "triad_array_mib": TRIAD_MIB,
        "triad_ntimes": TRIAD_N,
        "memtester_instances": 1,
    }
    refs, agents = [], []
    for i in range(3):  # interleaved, best of each: a shared machine drifts between runs
        refs.append(alone())
        run = _run([{"suite": "memory", "duration_s": 2, "options": opts}], work, f"mem{i}")
        agents.append(float(run["suites"][0]["measurements"]["triad_gbs"]))
    ref, agent = max(refs), max(agents)
    return {"metric": "triad GB/s (agent vs alone)", "agent": agent, "reference": ref,
            "ratio_pct": round(100 * agent / ref, 1), "target_pct": 90.0}  # fmt: skip


def fio(work: Path) -> dict[str, Any]:
    scratch = work / "fio-scratch.dat"
    subprocess.run(
        ["dd", "if=/dev/urandom", f"of={scratch}", "bs=1M", f"count={FIO_MIB}", "status=none"], check=True
    )
    opts = {"files": [{"path": str(scratch), "size_mib": FIO_MIB}]}
    agents, plains = [], []
    for i in range(2):  # interleaved, best of each: the disk is shared with other jobs
        res = _run([{"suite": "nvme", "duration_s": FIO_S, "options": opts}], work, f"fio{i}")
        agents.append(res["suites"][0]["measurements"]["fio"]["file:fio-scratch.dat"])
        job = work / f"fio{i}" / "artifacts" / "nvme.fio.fio-scratch.dat.read.fio"
        out = work / f"plain{i}.json"
        subprocess.run(["fio", "--readonly", "--output-format=json", f"--output={out}", str(job)], check=True)
        plains.append({j["name"]: j["read"] for j in parse_fio(out.read_text())["jobs"]})

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seq_read": max((r["seq_read"] for r in runs), key=lambda d: d["bw_bytes_per_s"]),
            "rand_read": max((r["rand_read"] for r in runs), key=lambda d: d["iops"]),
        }

    agent, plain = best(agents), best(plains)
    seq = agent["seq_read"]["bw_bytes_per_s"] / plain["seq_read"]["bw_bytes_per_s"]
    rnd = agent["rand_read"]["iops"] / plain["rand_read"]["iops"]

    def fmt(d: dict[str, Any]) -> str:
        return f"{d['seq_read']['bw_bytes_per_s'] / 1e6:.0f} | {d['rand_read']['iops']:.0f}"

    return {"metric": "fio seq MB/s | rand IOPS (agent vs plain)", "agent": fmt(agent),
            "reference": fmt(plain),
            "ratio_pct": round(100 * min(seq, rnd), 1), "target_pct": 95.0}  # fmt: skip


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(dir=REPO / "build" if (REPO / "build").is_dir() else None) as tmp:
        work = Path(tmp)
        for probe in (cpu_busy, triad, fio):
            rows.append(probe(work))
    print(f"{'metric':<44} {'agent':>14} {'reference':>14} {'ratio %':>8} {'target':>7}  ok")
    for r in rows:
        ok = "yes" if r["ratio_pct"] >= r["target_pct"] else "NO"
        cells = f"{r['agent']!s:>14} {r['reference']!s:>14} {r['ratio_pct']:>8} {r['target_pct']:>7}"
        print(f"{r['metric']:<44} {cells}  {ok}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "rows": rows}, indent=1
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
