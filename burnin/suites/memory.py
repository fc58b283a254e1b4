"""Memory suite: first a STREAM-style triad compiled here (gcc -O3 -fopenmp), pinned threads, arrays
>= 4x L3, result checked, GB/s against the profile's theoretical peak; then stress-ng vm with
--verify and parallel memtester instances, both sized to the free memory minus headroom for the OS;
EDAC deltas and kernel log across the phase. DIMM population from the inventory against the profile.

memtester's exit code is a bit mask (0x02 stuck address, 0x04 other test): fail; 0x01 alone
(could not allocate/lock) proves nothing: inconclusive.
"""

from __future__ import annotations

import glob
import json
import pkgutil
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from burnin.context import SuiteContext, ToolRun
from burnin.hostio import meminfo_kib, online_cpus, read
from burnin.parse_tools import memtester_mask, parse_memtester
from burnin.schema import Evidence, Verdict
from burnin.suites.common import HealthWatch, Report, inventory, inventory_evidence, start_thread
from burnin.suites.cpu import judge_stress_ng

SUITE = "memory"
MIB = 1024 * 1024


def l3_total_bytes() -> int:
    """Sum of the distinct L3 caches (one per CCX/CCD or socket), from sysfs."""
    seen: Dict[str, int] = {}
    for idx in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index3"):
        shared = read(Path(idx) / "shared_cpu_list") or idx
        size = read(Path(idx) / "size") or "0K"
        mult = {"K": 1024, "M": MIB}.get(size[-1], 1)
        seen[shared] = int(size.rstrip("KM") or 0) * mult
    return sum(seen.values())


def plan_sizes(
    opts: Dict[str, Any], avail_kib: int, total_kib: int, cpus: int, budget_s: float
) -> Dict[str, int]:
    """Pure sizing: what each tool may take, leaving headroom for the OS (never an OOM kill)."""
    headroom = max(total_kib * float(opts.get("headroom_pct", 5)) / 100, 512 * 1024)
    usable_kib = max(0, int((avail_kib - headroom) * float(opts.get("fraction", 0.9))))
    if opts.get("max_mib"):
        usable_kib = min(usable_kib, int(opts["max_mib"]) * 1024)
    vm_workers = int(opts.get("vm_workers", 0)) or cpus
    mt_instances = int(opts.get("memtester_instances", 0)) or cpus
    # memtester runs whole loops; size each so one loop fits the budget at the measured rate
    rate_mib_s = float(opts.get("memtester_mib_per_s", 2.0))
    mt_mib = min(usable_kib // 1024 // mt_instances, int(budget_s * rate_mib_s))
    return {
        "usable_mib": usable_kib // 1024,
        "vm_workers": vm_workers,
        "vm_kib_per_worker": max(4096, usable_kib // vm_workers),
        "memtester_instances": mt_instances,
        "memtester_mib": max(4, mt_mib),
    }


def memtester_verdict(rc: Any, failures: List[str]) -> Verdict:
    if failures or (isinstance(rc, int) and rc & 0x06):
        return Verdict.FAIL
    if rc == 0:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _memtester(rep: Report, ctx: SuiteContext, sizes: Dict[str, int], budget_s: float) -> None:
    runs: List[ToolRun] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        argv = ["memtester", f"{sizes['memtester_mib']}M", "1"]
        r = ctx.run_tool(f"memory.memtester.{i}", argv, max(120.0, budget_s * 4))
        with lock:
            runs.append(r)

    threads = [start_thread(rep, f"memtester.{i}", one, i) for i in range(sizes["memtester_instances"])]
    for t in threads:
        t.join()
    runs.sort(key=lambda r: r.evidence.id)
    worst: List[str] = []
    verdicts: List[Verdict] = []
    tested = 0
    tested_clean = 0  # bytes of instances that ran their whole loop and passed: proven coverage
    for r in runs:
        rep.keep(r)
        why = rep.cannot_run(r)
        parsed = parse_memtester(r.stdout + r.stderr)
        tested += parsed["tested_bytes"] or 0
        rc = r.evidence.exit_code
        if why:
            verdicts.append(Verdict.INCONCLUSIVE)
            worst.append(f"{r.evidence.id}: {why}")
            continue
        v = memtester_verdict(rc, parsed["failures"])
        if v is Verdict.PASS and not parsed["done"]:
            v = Verdict.INCONCLUSIVE
        verdicts.append(v)
        if v is Verdict.PASS:
            tested_clean += parsed["tested_bytes"] or 0
        if v is not Verdict.PASS:
            bits = "; ".join(memtester_mask(rc or 0)) or "no Done."
            worst.append(
                f"{r.evidence.id}: exit {rc} ({bits})"
                + (f": {parsed['failures'][0]}" if parsed["failures"] else "")
            )
    rep.measurements["memtester_tested_mib"] = tested // MIB
    rep.measurements["memtester_verified_mib"] = tested_clean // MIB
    observed = f"{verdicts.count(Verdict.PASS)}/{len(runs)} instances clean" + (
        ": " + "; ".join(worst[:3]) if worst else ""
    )
    rep.add(
        "memtester",
        "memory",
        "every instance exits 0 with all tests ok",
        observed,
        Verdict.worst(verdicts),
        [r.evidence.id for r in runs],
    )


def vm_verified_mib(rep: Report, metrics: Dict[str, Any], sizes: Dict[str, int]) -> int:
    """The stress-ng vm footprint (workers x bytes each), counted only when the vm stressor's own
    judgement passed (exit, fail:/error: lines, every worker dispatched) and it did work (bogo-ops > 0)."""
    judged = {f.check: f.verdict for f in rep.findings}
    ops = metrics.get("bogo-ops")
    if judged.get("vm_stress") is not Verdict.PASS or judged.get("vm_workers") is not Verdict.PASS:
        return 0
    if not isinstance(ops, (int, float)) or ops <= 0:
        return 0
    return sizes["vm_workers"] * sizes["vm_kib_per_worker"] // 1024


def tested_mib(measurements: Dict[str, Any]) -> int:
    """The largest share of RAM one verified pattern pass covered completely. stress-ng vm and memtester
    overlap in physical memory, so their figures are not added: the larger one counts."""
    return max(
        int(measurements.get("vm_verified_mib") or 0), int(measurements.get("memtester_verified_mib") or 0)
    )


def _triad(rep: Report, ctx: SuiteContext, usable_mib: int) -> None:
    binary = _build_triad(rep, ctx)
    if binary is None:
        return
    ran = _run_triad(rep, ctx, binary, usable_mib)
    if ran is None:
        return
    res, evidence = ran
    rep.measurements["triad"] = res
    rep.measurements["triad_gbs"] = res["triad_gbs"]
    ok = res.get("check") == "ok" and evidence.exit_code == 0
    rep.add(
        "triad_check",
        "memory",
        "every element equals the expected value",
        f"{res.get('bad_elements')} bad elements (max rel err {res.get('max_rel_err')})",
        Verdict.PASS if ok else Verdict.FAIL,
        [evidence.id],
    )
    _judge_triad_bandwidth(rep, ctx, res, evidence.id)


def _build_triad(rep: Report, ctx: SuiteContext) -> Optional[Path]:
    """Compile the shipped triad.c on this host (gcc, OpenMP): the binary, or None with
    an inconclusive triad_check saying why not."""
    work = ctx.run_dir / "triad"
    work.mkdir(exist_ok=True)
    source = pkgutil.get_data("burnin", "triad.c")
    if source is None:
        rep.add(
            "triad_check", "memory", "the triad source ships with the agent", "missing", Verdict.INCONCLUSIVE
        )
        return None
    (work / "triad.c").write_bytes(source)
    cflags = ["-O3", "-fopenmp"] + (["-march=native"] if ctx.options.get("triad_march_native") else [])
    cc = rep.keep(
        ctx.run_tool(
            "memory.triad_build",
            ["gcc", *cflags, "-o", str(work / "triad"), str(work / "triad.c"), "-lm"],
            120,
        )
    )
    if rep.cannot_run(cc) or cc.evidence.exit_code != 0:
        build_err = rep.cannot_run(cc) or f"gcc exit {cc.evidence.exit_code}"
        rep.add(
            "triad_check",
            "memory",
            "the triad builds and runs",
            build_err,
            Verdict.INCONCLUSIVE,
            [cc.evidence.id],
        )
        return None
    return work / "triad"


def _run_triad(
    rep: Report, ctx: SuiteContext, binary: Path, usable_mib: int
) -> Optional[Tuple[Dict[str, Any], Evidence]]:
    """Run the triad on arrays past the L3 (so it measures DRAM) but within a quarter of usable memory:
    its JSON result and evidence, or None with an inconclusive triad_check saying why not."""
    opts = ctx.options
    array_bytes = int(opts.get("triad_array_mib", 0)) * MIB or max(4 * l3_total_bytes(), 256 * MIB)
    array_bytes = min(array_bytes, max(16 * MIB, usable_mib * MIB // 4))
    ntimes = min(100, max(3, int(opts.get("triad_ntimes", 10))))
    threads = int(opts.get("triad_threads", 0)) or online_cpus()
    env = {"OMP_NUM_THREADS": str(threads), "OMP_PROC_BIND": "spread", "OMP_PLACES": "threads"}
    r = rep.keep(ctx.run_tool("memory.triad", [str(binary), str(array_bytes), str(ntimes)], 900, env=env))
    why: Optional[str] = rep.cannot_run(r)
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1]) if not why else {}
    except (ValueError, IndexError):
        why = "triad printed no JSON result"
        res = {}
    if why or not res:
        rep.add(
            "triad_check",
            "memory",
            "triad verified",
            why or f"exit {r.evidence.exit_code}",
            Verdict.INCONCLUSIVE,
            [r.evidence.id],
        )
        return None
    return res, r.evidence


def _judge_triad_bandwidth(rep: Report, ctx: SuiteContext, res: Dict[str, Any], evidence_id: str) -> None:
    """The triad's GB/s against the profile's theoretical peak (inconclusive, not required, without one)."""
    exp = ctx.expect("memory")
    peak = exp.get("peak_bandwidth_gbs")
    if not peak:
        rep.add(
            "triad_bandwidth",
            "memory",
            "a theoretical peak from the profile",
            f"{res['triad_gbs']} GB/s",
            Verdict.INCONCLUSIVE,
            [evidence_id],
            required=False,
        )
        return
    pct = 100.0 * float(res["triad_gbs"]) / float(peak)
    fail_pct, warn_pct = (
        float(exp.get("triad_fail_below_pct", 72)),
        float(exp.get("triad_warn_below_pct", 80)),
    )
    verdict = Verdict.FAIL if pct < fail_pct else Verdict.WARN if pct < warn_pct else Verdict.PASS
    rep.measurements["triad_pct_of_peak"] = round(pct, 1)
    rep.add(
        "triad_bandwidth",
        "memory",
        f">= {warn_pct:g}% of {peak} GB/s peak (fail below {fail_pct:g}%)",
        f"{res['triad_gbs']} GB/s = {pct:.1f}% of peak",
        verdict,
        [evidence_id],
    )


def _population(rep: Report, ctx: SuiteContext) -> None:
    exp = ctx.expect("memory")
    inv = inventory(ctx)
    total_mib = inv.get("memory_total_mib")
    if exp.get("total_gib") and total_mib:
        want = int(exp["total_gib"]) * 1024
        ok = want * 0.95 <= total_mib <= want
        rep.add(
            "memory_total",
            "memory",
            f"{want * 0.95:.0f}..{want} MiB usable",
            f"{total_mib} MiB",
            Verdict.PASS if ok else Verdict.FAIL,
        )
    if not exp.get("dimm_count"):
        return
    dimms = [d for d in inv.get("dimms", []) if d.get("present")]
    gap = (inv.get("gaps") or {}).get("memory.dimms")
    ev = inventory_evidence(rep, ctx, "inventory.dmidecode_memory", ["dmidecode", "-t", "16", "-t", "17"])
    if gap:
        why = f"DIMMs not readable: {gap}"
        rep.add("dimm_count", "memory", str(exp["dimm_count"]), why, Verdict.INCONCLUSIVE, ev)
        return
    rep.add(
        "dimm_count",
        "memory",
        str(exp["dimm_count"]),
        str(len(dimms)),
        Verdict.PASS if len(dimms) == int(exp["dimm_count"]) else Verdict.FAIL,
        ev,
    )
    allowed = [int(x) for x in exp.get("configured_mts_allowed", [])]
    for d in dimms:
        if allowed:
            mts = d.get("configured_mts")
            rep.add(
                "dimm_speed",
                "dimm:" + d["locator"],
                f"configured MT/s in {allowed}",
                str(mts),
                Verdict.PASS if mts in allowed else Verdict.FAIL,
                ev,
            )
        if exp.get("dimm_size_gib"):
            size = d.get("size_mib")
            want = int(exp["dimm_size_gib"]) * 1024
            rep.add(
                "dimm_size",
                "dimm:" + d["locator"],
                f"{want} MiB",
                str(size),
                Verdict.PASS if size == want else Verdict.FAIL,
                ev,
            )


def run(ctx: SuiteContext) -> Any:
    rep = Report(SUITE)
    opts = ctx.options
    duration = max(2.0, ctx.duration_s or 20)
    mem = meminfo_kib()
    cpus = online_cpus()
    sizes = plan_sizes(
        opts, mem.get("MemAvailable", mem.get("MemFree", 0)), mem.get("MemTotal", 0), cpus, duration / 2
    )
    rep.measurements.update(sizes)
    rep.measurements.update({"ram_mib": mem.get("MemTotal", 0) // 1024, "tested_mib": 0})
    watch = HealthWatch()
    # Bandwidth first, on memory the stressors have not yet fragmented (huge pages still at hand):
    # the figure is then comparable with a golden unit's.
    ctx.log("progress", suite=SUITE, step="triad")
    _triad(rep, ctx, sizes["usable_mib"])
    vm_s = max(1, int(duration / 2))
    yaml_rel = "artifacts/memory.stress_ng.yaml"
    argv = [
        "stress-ng", "--vm", str(sizes["vm_workers"]), "--vm-bytes", f"{sizes['vm_kib_per_worker']}k",
        "--vm-method", str(opts.get("vm_method", "all")), "--verify", "--oomable", "--metrics",
        "--yaml", str(ctx.run_dir / yaml_rel), "--timeout", f"{vm_s}s",
    ]  # fmt: skip
    if ctx.stop.is_set():
        return rep.result()
    ctx.log("progress", suite=SUITE, step="stress-ng vm", duration_s=vm_s, **sizes)
    r = rep.keep(ctx.run_tool("memory.stress_ng_vm", argv, vm_s + 120))
    yaml_path = ctx.run_dir / yaml_rel
    metrics = judge_stress_ng(
        rep, r, yaml_path.read_text() if yaml_path.is_file() else None, "vm", sizes["vm_workers"]
    )
    rep.measurements["vm_bogo_ops"] = metrics.get("bogo-ops")
    rep.measurements["vm_verified_mib"] = vm_verified_mib(rep, metrics, sizes)
    if not ctx.stop.is_set():
        ctx.log("progress", suite=SUITE, step="memtester", instances=sizes["memtester_instances"])
        _memtester(rep, ctx, sizes, duration / 2)
    rep.measurements["tested_mib"] = tested_mib(rep.measurements)
    _population(rep, ctx)
    watch.judge(rep, ctx, bool(ctx.expect("memory").get("ecc")))
    return rep.result()
