"""The GPU half of the system soak (burnin.suites.soak): the built-in CUDA stressor on every GPU for the
whole soak, at the same time as the CPU/memory/NVMe load, sampled through NVML with the XID watch armed.

The soak reaches it as `burnin.suites.gpu.soak_load(ctx, duration_s)`. What it returns (plain values):

    findings          gpu_present / gpu_xid / gpu_temperature / gpu_stress_result per GPU (a fault, a
                      mismatch, a lost GPU or a fatal XID fails; a load that could not start is
                      inconclusive), suite_thread for a crashed load thread, soak_gpu_load when NVML
                      itself cannot be opened
    evidence          what those findings rest on
    window            (start, end) epoch seconds during which every GPU that joined was under load, or None
    gpus              how many GPUs NVML lists
    joined            NVML indexes of the GPUs whose load ran
    peak_gpu_power_w  highest all-GPU power of one NVML sampling round (None if no round read all)
    max_temp_c        highest GPU temperature NVML reported during the load (None if none)
    error             why the GPU half did not run to its end, else None

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import time
from typing import Any, Dict

from burnin.context import SuiteContext
from burnin.gpu_verdicts import health_findings, stress_findings
from burnin.nvml import Nvml, NvmlUnavailable
from burnin.schema import Evidence, SuiteResult, Verdict, make_finding
from burnin.suites.gpu_stress import load_watching_xids, observe_gpus, read_counters_after

SOAK_GPU_CHECKS = ("gpu_present", "gpu_xid", "gpu_temperature", "gpu_stress_result", "suite_thread")


def soak_load(ctx: SuiteContext, duration_s: float, lib: Any = None, stressor: Any = None) -> Dict[str, Any]:
    """`lib`: the pynvml module (a fake in tests); `stressor`: a CudaStressor (a fake in tests)."""
    now = time.time()
    result = SuiteResult(suite="soak", verdict=Verdict.INCONCLUSIVE, started_at=now, ended_at=now)
    try:
        nvml = Nvml.open(lib)
    except NvmlUnavailable as exc:
        return _not_started(f"NVML cannot be opened: {exc}")
    try:
        gpus = observe_gpus(nvml)
        loads, events = load_watching_xids(ctx, nvml, stressor, gpus, result, duration_s)
        read_counters_after(nvml, gpus)
    finally:
        nvml.close()
    exp = ctx.expect("gpus")
    judged = health_findings(gpus, exp, events) + stress_findings(gpus, exp)
    temps = [g.max_temp_c for g in gpus if g.max_temp_c is not None]
    return {
        "findings": [f for f in judged if f.check in SOAK_GPU_CHECKS] + result.findings,
        "evidence": result.evidence,
        "window": loads["window"],
        "gpus": len(gpus),
        "joined": loads["joined"],
        "peak_gpu_power_w": loads["peak_gpu_power_w"],
        "max_temp_c": max(temps) if temps else None,
        "error": result.error,
    }


def _not_started(why: str) -> Dict[str, Any]:
    finding = make_finding(
        "soak_gpu_load",
        "gpus",
        "the GPU load starts on every GPU",
        why,
        Verdict.INCONCLUSIVE,
        "burnin",
        ["soak.gpu"],
    )
    return {
        "findings": [finding],
        "evidence": [Evidence(id="soak.gpu", command=["nvml"], error=why)],
        "window": None,
        "gpus": 0,
        "joined": [],
        "peak_gpu_power_w": None,
        "max_temp_c": None,
        "error": why,
    }
