"""The GPU burn-in suite: NVML inventory, the built-in CUDA stressor on every GPU at once with NVML
telemetry and an XID watch throughout, optional gpu_burn / dcgmi runs, and the verdicts of
burnin.gpu_verdicts (which documents the plan["expect"]["gpus"] keys it reads).

Options (spec["options"]): memory_pct (share of free GPU memory the memory kernel tests, default 90),
compute_share (of duration_s spent on the compute kernel, default 0.5), sample_interval_s (default 1),
gpu_burn (bool: run gpu_burn -tc too), gpu_burn_dir (where compare.ptx is), dcgm_level (int: run
`dcgmi diag -r N -p <the profile's limits> -j`; 0 = not), power_share (of duration_s spent on the
tensor-core + streaming power phase, default 0.25; 0 = none: burnin.gpu_power), copies / copy_mib /
copy_repeats / sysfs_root (host<->GPU and peer copies after the load: burnin.suites.gpu_copies), nccl
(bool: all_reduce_perf over every GPU). copies and nccl default to on when the plan carries the
profile's gpu_floors (plan["expect"]["gpus"]["pcie_floor_pct"]).

measurements["per_gpu"][i] also carries memory_total_mib (NVML's total), tested_mib (MiB the memory kernel
wrote AND checked in at least one whole pass; 0 when the phase faulted or errored before one),
closed_form_mismatches (compute words differing from the FMA chain's closed-form value), mem_copy_gbs
(cuMemcpyDtoD of the memory kernel's traffic), sustained_power_w (the power phase's median board power)
and power_mismatches; measurements["copies"] and measurements["nccl"] the copy and all-reduce figures.

The soak's GPU half is `soak_load(ctx, duration_s)` (burnin.suites.gpu_soak); the load itself, shared by
both, is burnin.suites.gpu_stress.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from burnin.context import SuiteContext
from burnin.gpu_load import CudaStressor
from burnin.gpu_power_verdicts import power_phase_findings, sustained_watts
from burnin.gpu_verdicts import (
    GpuObservation,
    health_findings,
    inventory_findings,
    power_finding,
    stress_findings,
)
from burnin.nvml import Nvml, NvmlUnavailable
from burnin.schema import Evidence, Finding, SuiteResult, Verdict
from burnin.suites.gpu_copies import copy_phase, wanted
from burnin.suites.gpu_soak import soak_load
from burnin.suites.gpu_stress import load_watching_xids, observe_gpus, read_counters_after
from burnin.suites.gpu_tools import third_party_findings

__all__ = ["CudaStressor", "run", "soak_load"]  # CudaStressor: tests patch its loader through here


def run(ctx: SuiteContext, lib: Any = None, stressor: Any = None) -> SuiteResult:
    """`lib`: the pynvml module (a fake in tests); `stressor`: a CudaStressor (a fake in tests)."""
    started = time.time()
    exp = ctx.expect("gpus")
    result = SuiteResult(suite="gpu", verdict=Verdict.INCONCLUSIVE, started_at=started, ended_at=started)
    try:
        nvml = Nvml.open(lib)
    except NvmlUnavailable as exc:
        want = int(exp.get("count", 0))
        result.findings.append(
            Finding(
                id="gpu_driver:node",
                check="gpu_driver",
                component="node",
                expected=f"NVML with {want} GPUs" if want else "NVML (no GPUs expected)",
                observed=str(exc),
                verdict=Verdict.FAIL if want else Verdict.INCONCLUSIVE,
                evidence=["gpu.nvml"],
                source="nvml",
            )
        )
        result.evidence.append(Evidence(id="gpu.nvml", error=str(exc)))
        return _finish(result, ctx)
    try:
        _burn(ctx, nvml, stressor, exp, result)
    finally:
        nvml.close()
        result.measurements["nvml_gaps"] = dict(nvml.gaps)
    return _finish(result, ctx)


def _finish(result: SuiteResult, ctx: SuiteContext) -> SuiteResult:
    result.ended_at = time.time()
    result.verdict = Verdict.worst(
        [f.verdict for f in result.findings if f.required or f.verdict in (Verdict.FAIL, Verdict.WARN)]
    )
    ctx.log("gpu_verdict", verdict=result.verdict.value, findings=len(result.findings))
    return result


def _burn(ctx: SuiteContext, nvml: Nvml, stressor: Any, exp: Dict[str, Any], result: SuiteResult) -> None:
    opts = ctx.options
    gpus = _inventory(ctx, nvml, exp, result)
    loads, events = load_watching_xids(ctx, nvml, stressor, gpus, result, ctx.duration_s)
    read_counters_after(nvml, gpus)
    result.measurements["xid_events"] = list(events)
    for e in events:
        ctx.log("gpu_xid", gpu=e["gpu"], xid=e["xid"])
    result.findings += health_findings(gpus, exp, events)
    result.findings += stress_findings(gpus, exp)
    result.findings += power_phase_findings(gpus, exp)
    result.findings.append(power_finding(loads.get("peak_gpu_power_w"), exp))
    result.measurements["per_gpu"] = [_per_gpu(g) for g in gpus]
    result.measurements["peak_gpu_power_w"] = loads.get("peak_gpu_power_w")
    if ctx.stop.is_set():  # cancelled: what was seen still counts, but a short burn proves nothing
        result.error = "cancelled before the load finished"
        result.findings.append(_cancelled_finding(ctx, result.error))
        return
    if wanted(ctx, exp):
        copy_phase(ctx, loads, exp, result, {g.index: (g.max_pcie_gen, g.max_pcie_width) for g in gpus})
    result.findings += third_party_findings(ctx, opts, exp, result)


def _inventory(
    ctx: SuiteContext, nvml: Nvml, exp: Dict[str, Any], result: SuiteResult
) -> List[GpuObservation]:
    """Every GPU NVML lists, with its counters before the load (a GPU already lost is kept, marked)."""
    system = nvml.system()
    gpus = observe_gpus(nvml)
    result.measurements["system"] = system
    result.measurements["gpus"] = [g.info for g in gpus]
    ctx.log("gpu_inventory", count=len(gpus), names=[g.info.get("name") for g in gpus], **system)
    result.evidence.append(
        Evidence(
            id="gpu.nvml", command=["nvml"], excerpt=f"{len(gpus)} GPUs, driver {system['driver_version']}"
        )
    )
    result.findings += inventory_findings(gpus, exp)
    return gpus


def _per_gpu(g: GpuObservation) -> Dict[str, Any]:
    return {
        "index": g.index,
        "tflops": None if g.flops is None else round(g.flops / 1e12, 3),
        "mem_gbs": None if g.mem_bytes_per_s is None else round(g.mem_bytes_per_s / 1e9, 1),
        "max_temp_c": g.max_temp_c,
        "max_power_w": g.max_power_w,
        "clock_events": g.clock_events,
        "compute_mismatches": g.compute_mismatches,
        "memory_mismatches": g.memory_mismatches,
        "closed_form_mismatches": g.closed_form_mismatches,
        "mem_copy_gbs": g.mem_copy_gbs,  # cuMemcpyDtoD of the same traffic, beside mem_gbs
        "sustained_power_w": sustained_watts(g),  # median board power of the power phase
        "power_limit_enforced_w": g.info.get("power_limit_enforced_w"),
        "power_mismatches": None if g.power is None else g.power.mismatches,
        "memory_total_mib": g.info.get("memory_mib"),
        "tested_mib": g.memory_tested_bytes // (1024 * 1024),
        "counters_before": g.before,
        "counters_after": g.after,
    }


def _cancelled_finding(ctx: SuiteContext, error: str) -> Finding:
    return Finding(
        id="gpu_run_complete:node",
        check="gpu_run_complete",
        component="node",
        expected=f"{ctx.duration_s:g} s of load",
        observed=error,
        verdict=Verdict.INCONCLUSIVE,
        evidence=["gpu.stress"],
        source="burnin",
    )
