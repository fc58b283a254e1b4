"""System soak: CPU, memory and NVMe load at once for the plan's time, to load power and cooling
together; the GPU suite joins through its optional `soak_load(ctx, duration_s)` hook.

Caps from the plan: options.cpu_load_pct (stress-ng --cpu-load), options.memory_fraction, and
expect.power.stagger_cpu_gpu: when the feed cannot carry CPU and GPU burn at once, the CPU/memory
half and the GPU half run one after the other instead of together.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

from burnin.context import SuiteContext
from burnin.hostio import meminfo_kib, nvme_namespaces, online_cpus
from burnin.suites.common import HealthWatch, Report, judge_temperatures, phase_series, start_thread
from burnin.suites.cpu import CPU_TEMP_PREFIXES, judge_stress_ng
from burnin.suites.memory import plan_sizes
from burnin.suites.nvme import fio_pass


def _gpu_hook() -> Optional[Callable[[SuiteContext, float], Any]]:
    try:
        module = importlib.import_module("burnin.suites.gpu")
    except ImportError:
        return None
    hook = getattr(module, "soak_load", None)
    return hook if callable(hook) else None


def _host_load(rep: Report, ctx: SuiteContext, duration: int) -> None:
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
    if opts.get("cpu_load_pct"):
        argv += ["--cpu-load", str(int(opts["cpu_load_pct"]))]
    targets = [
        {"kind": "block", "name": ns["name"], "path": ns["device"], "nvme": True, "sysfs": ns}
        for ns in nvme_namespaces()
    ]
    io = []
    for t in targets:
        part = f"nvme:{t['sysfs'].get('serial') or t['name']}"
        io.append(start_thread(rep, part, fio_pass, rep, ctx, t, "read", ["seq_read"], duration))
    r = rep.keep(ctx.run_tool("soak.stress_ng", argv, duration + 120))
    for th in io:
        th.join()
    yaml_path = ctx.run_dir / yaml_rel
    text = yaml_path.read_text() if yaml_path.is_file() else None
    judge_stress_ng(rep, r, text, "cpu", cpus)
    judge_stress_ng(rep, r, text, "vm", sizes["vm_workers"])
    rep.measurements["soak_nvme_targets"] = [t["name"] for t in targets]


def run(ctx: SuiteContext) -> Any:
    rep = Report("soak")
    duration = max(2, int(ctx.duration_s or 30))
    watch = HealthWatch()
    gpu = _gpu_hook() if ctx.expect("gpus").get("count") else None
    stagger = bool(ctx.expect("power").get("stagger_cpu_gpu"))
    rep.measurements.update(
        {"duration_s": duration, "gpu_joined": gpu is not None, "staggered": bool(gpu and stagger)}
    )
    if gpu is None:
        _host_load(rep, ctx, duration)
    elif stagger:
        ctx.mark_phase("soak:host")
        _host_load(rep, ctx, duration // 2)
        ctx.mark_phase("soak:gpu")
        gpu(ctx, duration / 2)
    else:
        # the GPU half's crash must not hide the host half's results: recorded, never lost
        th = start_thread(rep, "gpu", gpu, ctx, float(duration))
        _host_load(rep, ctx, duration)
        th.join()
    busy = phase_series(ctx, "cpu.busy_pct", rep.started)
    if busy:
        rep.measurements["cpu_busy_pct_avg"] = round(sum(busy) / len(busy), 1)
    prefix = next((p for p in CPU_TEMP_PREFIXES if phase_series(ctx, p, rep.started)), CPU_TEMP_PREFIXES[0])
    judge_temperatures(rep, ctx, prefix, ctx.expect("cpu").get("temp_max_c"), "cpu")
    watch.judge(rep, ctx, bool(ctx.expect("memory").get("ecc")))
    return rep.result()
