"""The GPU burn-in suite: NVML inventory, the built-in CUDA stressor on every GPU at once with NVML
telemetry and an XID watch throughout, optional gpu_burn / dcgmi runs, and the verdicts of
burnin.gpu_verdicts (which documents the plan["expect"]["gpus"] keys it reads).

Options (spec["options"]): memory_pct (share of free GPU memory the memory kernel tests, default 90),
compute_share (of duration_s spent on the compute kernel, default 0.5), sample_interval_s (default 1),
gpu_burn (bool: run gpu_burn -tc too), gpu_burn_dir (where compare.ptx is), dcgm_level (int: run
`dcgmi diag -r N --json`; 0 = not).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from burnin.context import SuiteContext
from burnin.gpu_load import CudaError, CudaStressor, CudaUnavailable, GpuLoadResult
from burnin.gpu_verdicts import (
    GpuObservation,
    health_findings,
    inventory_findings,
    power_finding,
    stress_findings,
)
from burnin.nvml import GpuLost, Nvml, NvmlUnavailable, XidWatcher
from burnin.schema import Evidence, Finding, SuiteResult, Verdict
from burnin.suites.gpu_tools import third_party_findings


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
    loads, events = _load_watching_xids(ctx, nvml, stressor, gpus, opts, result)
    _read_counters_after(nvml, gpus)
    result.measurements["xid_events"] = list(events)
    for e in events:
        ctx.log("gpu_xid", gpu=e["gpu"], xid=e["xid"])
    result.findings += health_findings(gpus, exp, events)
    result.findings += stress_findings(gpus, exp)
    result.findings.append(power_finding(loads.get("peak_gpu_power_w"), exp))
    result.measurements["per_gpu"] = [_per_gpu(g) for g in gpus]
    result.measurements["peak_gpu_power_w"] = loads.get("peak_gpu_power_w")
    if ctx.stop.is_set():  # cancelled: what was seen still counts, but a short burn proves nothing
        result.error = "cancelled before the load finished"
        result.findings.append(_cancelled_finding(ctx, result.error))
        return
    result.findings += third_party_findings(ctx, opts, exp, result)


def _inventory(
    ctx: SuiteContext, nvml: Nvml, exp: Dict[str, Any], result: SuiteResult
) -> List[GpuObservation]:
    """Every GPU NVML lists, with its counters before the load (a GPU already lost is kept, marked)."""
    system = nvml.system()
    gpus: List[GpuObservation] = []
    for i in range(nvml.count):
        g = GpuObservation(index=i, info={"index": i})
        try:
            g.info = nvml.describe(i)
            g.before = nvml.counters(i)
        except GpuLost as lost:
            g.lost = lost.reason
        gpus.append(g)
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


def _load_watching_xids(
    ctx: SuiteContext,
    nvml: Nvml,
    stressor: Any,
    gpus: List[GpuObservation],
    opts: Dict[str, Any],
    result: SuiteResult,
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The load with the XID watch armed before it starts and finished after it ends, even on error:
    the load's figures and the XID events seen."""
    watcher = XidWatcher(nvml)
    watcher.arm()
    for i in watcher.watched:
        gpus[i].xid_watched = True
    watcher.start()
    try:
        loads = _load(ctx, nvml, stressor, gpus, opts, result)
    finally:
        watcher.finish()
    for i, reason in watcher.lost.items():
        if 0 <= i < len(gpus):
            gpus[i].lost = gpus[i].lost or reason
    if watcher.error and -1 not in watcher.lost:
        nvml.gaps["xid_watch"] = watcher.error
    return loads, watcher.events


def _read_counters_after(nvml: Nvml, gpus: List[GpuObservation]) -> None:
    for g in gpus:
        if g.lost is None:
            try:
                g.after = nvml.counters(g.index)
            except GpuLost as lost:
                g.lost = lost.reason


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


def _load(
    ctx: SuiteContext,
    nvml: Nvml,
    stressor: Any,
    gpus: List[GpuObservation],
    opts: Dict[str, Any],
    result: SuiteResult,
) -> Dict[str, Any]:
    """Run the stressor on every GPU while this thread samples NVML. The telemetry thread of the agent
    reads the latest sample through add_sampler (it never calls NVML itself)."""
    latest: Dict[str, float] = {}
    live = {"on": True}

    def sampler() -> Dict[str, float]:
        return dict(latest) if live["on"] else {}

    ctx.add_sampler("gpu", sampler)
    duration = max(1.0, ctx.duration_s)
    share = float(opts.get("compute_share", 0.5))
    interval = float(opts.get("sample_interval_s", ctx.plan.get("sample_interval_s", 1.0)))
    results: Dict[int, GpuLoadResult] = {}
    stressor, devices = _devices(stressor, nvml, gpus)
    compute_s, memory_s = duration * share, duration * (1 - share)
    threads = _load_threads(ctx, stressor, devices, opts, compute_s, memory_s, results)
    ctx.mark_phase("gpu.load")
    ctx.log("gpu_load_start", gpus=sorted(devices), duration_s=duration)
    for t in threads:
        t.start()
    peak = _sample_while_loaded(ctx, nvml, gpus, devices, threads, latest, interval)
    for t in threads:
        t.join()
    live["on"] = False
    ctx.mark_phase("gpu.idle")
    for n, r in results.items():
        _record_load_result(ctx, gpus[n], n, r)
    result.evidence.append(_load_evidence(duration, results, _load_gaps(devices, gpus)))
    return {"peak_gpu_power_w": peak}


def _load_threads(
    ctx: SuiteContext,
    stressor: Any,
    devices: Dict[int, Any],
    opts: Dict[str, Any],
    compute_s: float,
    memory_s: float,
    results: Dict[int, GpuLoadResult],
) -> List[threading.Thread]:
    """One thread per CUDA device (not started); each puts its result in `results` by NVML index."""
    threads: List[threading.Thread] = []
    for nvml_index, device in devices.items():

        def work(n: int = nvml_index, d: Any = device) -> None:
            results[n] = stressor.run(d, compute_s, memory_s, float(opts.get("memory_pct", 90)), ctx.stop)

        threads.append(threading.Thread(target=work, name=f"gpu-load-{nvml_index}", daemon=True))
    return threads


def _sample_while_loaded(
    ctx: SuiteContext,
    nvml: Nvml,
    gpus: List[GpuObservation],
    devices: Dict[int, Any],
    threads: List[threading.Thread],
    latest: Dict[str, float],
    interval: float,
) -> Optional[float]:
    """Sample every GPU each `interval` until the load ends or the run is cancelled, keeping the latest
    figures in `latest`: the peak node GPU power (None if no round read every GPU's power)."""
    peak = None
    first = True  # with no load to watch, one sample still records temperatures and power
    while first or (any(t.is_alive() for t in threads) and not ctx.stop.is_set()):
        first = False
        total, complete = _sample_round(ctx, nvml, gpus, devices, latest)
        if complete and gpus:
            peak = total if peak is None else max(peak, total)
            latest["gpu.node_power_w"] = total
        ctx.stop.wait(interval)
    return peak


def _sample_round(
    ctx: SuiteContext,
    nvml: Nvml,
    gpus: List[GpuObservation],
    devices: Dict[int, Any],
    latest: Dict[str, float],
) -> Tuple[float, bool]:
    """One sample of every GPU still there: their total power, and whether every one reported it."""
    total, complete = 0.0, True
    for g in gpus:
        if g.lost:
            continue
        try:
            s = nvml.sample(g.index)
        except GpuLost as lost:
            g.lost = lost.reason
            ctx.log("gpu_lost", gpu=g.index, reason=lost.reason)
            continue
        _accumulate(g, s, loaded=g.index in devices)
        latest.update({f"gpu{g.index}.{k}": v for k, v in s.items() if v is not None})
        complete = complete and s.get("power_w") is not None
        total += s.get("power_w") or 0.0
    return total, complete


def _record_load_result(ctx: SuiteContext, g: GpuObservation, n: int, r: GpuLoadResult) -> None:
    """Fold one GPU's stressor result into its observation. A fault is the card's; an error is ours
    (setup). Each phase's mismatch counts are kept whatever the other phase did: a mismatch is
    corruption the card produced, so it fails the card (burnin.gpu_verdicts.stress_findings)."""
    g.flops, g.mem_bytes_per_s, g.reference_digest = (
        r.compute.flops,
        r.memory.bytes_per_s,
        r.compute.reference_digest,
    )
    faults = [x.error for x in (r.compute, r.memory) if x.error and x.fault]
    errors = [x.error for x in (r.compute, r.memory) if x.error and not x.fault]
    g.load_fault = "; ".join(e for e in faults if e) or None
    g.load_error = "; ".join(e for e in errors if e) or None
    g.compute_mismatches, g.memory_mismatches = r.compute.mismatches, r.memory.mismatched_words
    ctx.log(
        "gpu_load_result",
        gpu=n,
        tflops=(r.compute.flops or 0) / 1e12,
        mem_gbs=(r.memory.bytes_per_s or 0) / 1e9,
        compute_mismatches=r.compute.mismatches,
        memory_mismatches=r.memory.mismatched_words,
        error=g.load_fault or g.load_error,
    )


def _load_evidence(duration: float, results: Dict[int, GpuLoadResult], gaps: Optional[str]) -> Evidence:
    return Evidence(
        id="gpu.stress",
        command=["builtin:cuda-ptx", f"duration_s={duration:g}"],
        duration_s=duration,
        excerpt="; ".join(
            "gpu{}: {:.1f} TFLOP/s, {:.0f} GB/s".format(
                n, (r.compute.flops or 0) / 1e12, (r.memory.bytes_per_s or 0) / 1e9
            )
            for n, r in sorted(results.items())
        ),
        error=gaps,
    )


def _load_gaps(devices: Dict[int, Any], gpus: List[GpuObservation]) -> Optional[str]:
    missing = [g for g in gpus if g.index not in devices]
    if not missing:
        return None
    return "; ".join(f"gpu{g.index}: {g.load_error}" for g in missing)


def _devices(stressor: Any, nvml: Nvml, gpus: List[GpuObservation]) -> Tuple[Any, Dict[int, Any]]:
    """The stressor (the one given, else the real one opened here: the load threads must run on it)
    and its CUDA devices by NVML index (CUDA orders them fastest-first, NVML by PCI address: match
    bus ids)."""
    try:
        stressor = stressor if stressor is not None else CudaStressor.open()
        found = stressor.devices()
    except (CudaUnavailable, CudaError) as exc:
        for g in gpus:
            g.load_error = f"no CUDA: {exc}"
        return stressor, {}
    by_bus = {_bus(d.pci_bus_id): d for d in found}
    out: Dict[int, Any] = {}
    for g in gpus:
        d = by_bus.get(_bus(g.info.get("pci_bus_id") or ""))
        if d is None:
            g.load_error = f"no CUDA device at PCI {g.info.get('pci_bus_id')}"
        elif not g.lost:
            out[g.index] = d
    return stressor, out


def _bus(text: str) -> str:
    """'00000000:41:00.0' (NVML) and '0000:41:00.0' (CUDA) -> '0:41:0.0'."""
    try:
        dom, bus, rest = text.strip().lower().split(":")
        dev, fn = rest.split(".")
        return f"{int(dom, 16)}:{int(bus, 16):x}:{int(dev, 16):x}.{int(fn, 16)}"
    except ValueError:
        return text


def _accumulate(g: GpuObservation, s: Dict[str, Optional[float]], loaded: bool) -> None:
    """Fold one sample into the GPU's maxima; the PCIe link only counts under load (it trains down idle)."""
    g.samples += 1

    def hi(cur: Optional[float], new: Optional[float]) -> Optional[float]:
        return cur if new is None else new if cur is None else max(cur, new)

    g.max_temp_c = hi(g.max_temp_c, s.get("temp_c"))
    g.max_power_w = hi(g.max_power_w, s.get("power_w"))
    events = s.get("clock_events")
    if loaded:
        gen, width = hi(g.max_pcie_gen, s.get("pcie_gen")), hi(g.max_pcie_width, s.get("pcie_width"))
        g.max_pcie_gen = None if gen is None else int(gen)
        g.max_pcie_width = None if width is None else int(width)
    if events is not None:
        g.clock_events = (g.clock_events or 0) | int(events)
