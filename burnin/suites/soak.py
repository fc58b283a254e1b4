"""System soak: CPU, memory and NVMe load at once for the plan's time, and on a host with GPUs expected
(expect.gpus.count) the GPUs too, through the GPU suite's `soak_load(ctx, duration_s)` hook, all at the
same time: power and cooling are loaded together, never one half after the other.

The CPU share comes from the controller: expect.power.soak_cpu_load_pct (an int in 1..100, computed from
the feed; absent or 100 = full load) gives stress-ng `--cpu-load <pct>` when below 100 (options.cpu_load_pct,
for smoke plans, is honoured too; the lower of the two wins). options.memory_fraction sizes the vm load.

Measurements (besides the stressors' own): duration_s, cpu_load_pct, gpu_joined (bool), gpus_joined
(NVML indexes), together_s (seconds during which the CPU stressor and every joined GPU's load both ran,
from their real start/end times; 0 when no GPU joined), peak_node_power_w (max over telemetry ticks of
the GPU power sum + RAPL package power, whichever series exist; None when neither, with the reason in
gaps), peak_gpu_power_w (from the GPU half's own NVML rounds), max_temps ({"cpu_c", "gpu_c"}), gaps.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from burnin.context import SuiteContext
from burnin.hostio import meminfo_kib, nvme_namespaces, online_cpus
from burnin.schema import Verdict
from burnin.suites.common import HealthWatch, Report, judge_temperatures, phase_series, start_thread
from burnin.suites.cpu import CPU_TEMP_PREFIXES, judge_stress_ng
from burnin.suites.memory import plan_sizes
from burnin.suites.nvme import fio_pass
from burnin.suites.soak_figures import max_temps, peak_node_power

GpuHook = Callable[[SuiteContext, float], Dict[str, Any]]


def _gpu_hook() -> Optional[GpuHook]:
    try:
        module = importlib.import_module("burnin.suites.gpu")
    except ImportError:
        return None
    hook = getattr(module, "soak_load", None)
    return hook if callable(hook) else None


def cpu_load_pct(ctx: SuiteContext) -> Tuple[Optional[int], Optional[str]]:
    """The CPU share the soak may load: (pct, None), or (None, why) when the plan's value is not an
    integer in 1..100 (the soak then does not run: a wrong share could overload the feed)."""
    wanted: List[int] = []
    for where, raw in (
        ("expect.power.soak_cpu_load_pct", ctx.expect("power").get("soak_cpu_load_pct")),
        ("options.cpu_load_pct", ctx.options.get("cpu_load_pct")),
    ):
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 100:
            return None, f"{where} must be an integer in 1..100, got {raw!r}"
        wanted.append(raw)
    return min(wanted, default=100), None


def _host_load(rep: Report, ctx: SuiteContext, duration: int, pct: int) -> Tuple[float, float]:
    """CPU + memory (stress-ng) and NVMe reads (fio) for `duration`: stress-ng's start and end times."""
    opts = ctx.options
    cpus = online_cpus()
    mem = meminfo_kib()
    sizes = plan_sizes(
        {
            "fraction": opts.get("memory_fraction", 0.5),
            "max_mib": opts.get("max_mib"),
            "vm_workers": max(1, cpus // 4),
        },
        mem.get("MemAvailable", 0), mem.get("MemTotal", 0), cpus, duration,
    )  # fmt: skip
    yaml_rel = "artifacts/soak.stress_ng.yaml"
    argv = [
        "stress-ng", "--cpu", str(cpus), "--cpu-method", "matrixprod",
        "--vm", str(sizes["vm_workers"]), "--vm-bytes", f"{sizes['vm_kib_per_worker']}k",
        "--verify", "--oomable", "--metrics", "--yaml", str(ctx.run_dir / yaml_rel),
        "--timeout", f"{duration}s",
    ]  # fmt: skip
    if pct < 100:
        argv += ["--cpu-load", str(pct)]
    targets = [
        {"kind": "block", "name": ns["name"], "path": ns["device"], "nvme": True, "sysfs": ns}
        for ns in nvme_namespaces()
    ]
    io = []
    for t in targets:
        part = f"nvme:{t['sysfs'].get('serial') or t['name']}"
        io.append(start_thread(rep, part, fio_pass, rep, ctx, t, "read", ["seq_read"], duration))
    started = time.time()
    r = rep.keep(ctx.run_tool("soak.stress_ng", argv, duration + 120))
    ended = time.time()
    for th in io:
        th.join()
    yaml_path = ctx.run_dir / yaml_rel
    text = yaml_path.read_text() if yaml_path.is_file() else None
    judge_stress_ng(rep, r, text, "cpu", cpus)
    judge_stress_ng(rep, r, text, "vm", sizes["vm_workers"])
    rep.measurements["soak_nvme_targets"] = [t["name"] for t in targets]
    cpu_ran = r.evidence.exit_code is not None and not rep.cannot_run(r)
    return (started, ended) if cpu_ran else (started, started)


def _judge_gpu_half(
    rep: Report,
    expected: int,
    hook: Optional[GpuHook],
    gpu: Optional[Dict[str, Any]],
    cpu_span: Tuple[float, float],
) -> None:
    """Fold the GPU half's findings in, measure how long both halves ran together, and say whether the
    GPUs joined (a required finding on a host with GPUs expected)."""
    together = 0.0
    joined: List[int] = []
    if gpu is not None:
        rep.findings.extend(gpu["findings"])
        rep.evidence.extend(gpu["evidence"])
        joined = list(gpu["joined"])
        window = gpu["window"]
        if window is not None and joined:
            together = max(0.0, min(cpu_span[1], window[1]) - max(cpu_span[0], window[0]))
        rep.measurements["peak_gpu_power_w"] = gpu["peak_gpu_power_w"]
    rep.measurements.update(
        {"gpu_joined": together > 0, "gpus_joined": joined, "together_s": round(together, 1)}
    )
    if not expected:
        return
    if hook is None:
        observed = "the agent has no GPU soak hook (burnin.suites.gpu.soak_load)"
    elif gpu is None:
        observed = "the GPU half crashed (see suite_thread:gpu)"
    else:
        observed = (
            f"{len(joined)} of {expected} expected GPUs loaded ({gpu['gpus']} listed by NVML), "
            f"{together:.1f} s together with the CPUs"
        )
        if gpu["error"]:
            observed += f": {gpu['error']}"
    ok = gpu is not None and len(joined) >= expected and together > 0
    rep.add(
        "soak_gpu_joined",
        "gpus",
        f"{expected} GPUs under load at the same time as the CPUs",
        observed,
        Verdict.PASS if ok else Verdict.INCONCLUSIVE,
        [e.id for e in gpu["evidence"]] if gpu is not None else [],
    )


def run(ctx: SuiteContext) -> Any:
    rep = Report("soak")
    duration = max(2, int(ctx.duration_s or 30))
    pct, bad_pct = cpu_load_pct(ctx)
    rep.measurements.update(
        {"duration_s": duration, "cpu_load_pct": pct, "gpu_joined": False, "together_s": 0.0}
    )
    if pct is None:
        rep.add("soak_cpu_load_pct", "host", "an integer share in 1..100", str(bad_pct), Verdict.INCONCLUSIVE)
        rep.error = f"the soak did not run: {bad_pct}"
        return rep.result()
    expected = int(ctx.expect("gpus").get("count") or 0)
    hook = _gpu_hook() if expected else None
    watch = HealthWatch()
    box: Dict[str, Any] = {}
    th = None
    if hook is not None:
        # the GPU half's crash must not hide the host half's results: recorded, never lost
        th = start_thread(rep, "gpu", lambda: box.update(out=hook(ctx, float(duration))))
    cpu_span = _host_load(rep, ctx, duration, pct)
    if th is not None:
        th.join()
    gpu = box.get("out")
    _judge_gpu_half(rep, expected, hook, gpu, cpu_span)
    busy = phase_series(ctx, "cpu.busy_pct", rep.started)
    if busy:
        rep.measurements["cpu_busy_pct_avg"] = round(sum(busy) / len(busy), 1)
    gpu_indexes = list(range(int((gpu or {}).get("gpus") or 0)))
    gaps: Dict[str, str] = {}
    rep.measurements["peak_node_power_w"] = peak_node_power(ctx, rep.started, gpu_indexes, gaps)
    prefix = next((p for p in CPU_TEMP_PREFIXES if phase_series(ctx, p, rep.started)), CPU_TEMP_PREFIXES[0])
    rep.measurements["max_temps"] = max_temps(
        ctx, rep.started, prefix, gpu_indexes, (gpu or {}).get("max_temp_c")
    )
    rep.measurements["gaps"] = gaps
    judge_temperatures(rep, ctx, prefix, ctx.expect("cpu").get("temp_max_c"), "cpu")
    watch.judge(rep, ctx, bool(ctx.expect("memory").get("ecc")))
    return rep.result()
