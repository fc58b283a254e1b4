"""The built-in CUDA stressor on every GPU at once, sampled through NVML while it runs, with the XID
watch armed around it: what the GPU suite and the soak's GPU half (burnin.suites.gpu.soak_load) share.

A crash in a per-GPU load thread is never lost: it becomes an inconclusive `suite_thread` finding naming
the GPU, with the traceback's last line (and the whole traceback as evidence).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from burnin.context import SuiteContext
from burnin.gpu_load import CudaError, CudaStressor, CudaUnavailable, GpuLoadResult
from burnin.gpu_verdicts import GpuObservation, component
from burnin.nvml import GpuLost, Nvml, XidWatcher
from burnin.schema import Evidence, SuiteResult, Verdict, make_finding


def load_watching_xids(
    ctx: SuiteContext,
    nvml: Nvml,
    stressor: Any,
    gpus: List[GpuObservation],
    result: SuiteResult,
    duration_s: float,
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The load with the XID watch armed before it starts and finished after it ends, even on error:
    the load's figures and the XID events seen."""
    watcher = XidWatcher(nvml)
    watcher.arm()
    for i in watcher.watched:
        gpus[i].xid_watched = True
    watcher.start()
    try:
        loads = load(ctx, nvml, stressor, gpus, result, duration_s)
    finally:
        watcher.finish()
    for i, reason in watcher.lost.items():
        if 0 <= i < len(gpus):
            gpus[i].lost = gpus[i].lost or reason
    if watcher.error and -1 not in watcher.lost:
        nvml.gaps["xid_watch"] = watcher.error
    return loads, watcher.events


def observe_gpus(nvml: Nvml) -> List[GpuObservation]:
    """Every GPU NVML lists, with its counters before the load (a GPU already lost is kept, marked)."""
    gpus: List[GpuObservation] = []
    for i in range(nvml.count):
        g = GpuObservation(index=i, info={"index": i})
        try:
            g.info = nvml.describe(i)
            g.before = nvml.counters(i)
        except GpuLost as lost:
            g.lost = lost.reason
        gpus.append(g)
    return gpus


def read_counters_after(nvml: Nvml, gpus: List[GpuObservation]) -> None:
    for g in gpus:
        if g.lost is None:
            try:
                g.after = nvml.counters(g.index)
            except GpuLost as lost:
                g.lost = lost.reason


def load(
    ctx: SuiteContext,
    nvml: Nvml,
    stressor: Any,
    gpus: List[GpuObservation],
    result: SuiteResult,
    duration_s: float,
) -> Dict[str, Any]:
    """Run the stressor on every GPU for `duration_s` while this thread samples NVML. The telemetry
    thread of the agent reads the latest sample through add_sampler (it never calls NVML itself).
    Returns {"peak_gpu_power_w", "window": (start, end) epoch seconds during which every GPU that
    joined was under load (None when none joined), "joined": [NVML indexes whose load ran],
    "devices": {NVML index: CUDA device}, "stressor": the stressor that ran}."""
    opts = ctx.options
    latest: Dict[str, float] = {}
    live = {"on": True}

    def sampler() -> Dict[str, float]:
        return dict(latest) if live["on"] else {}

    ctx.add_sampler("gpu", sampler)
    duration = max(1.0, duration_s)
    share = float(opts.get("compute_share", 0.5))
    power_share = float(opts.get("power_share", 0.25))  # the tensor-core + streaming phase (gpu_power)
    interval = float(opts.get("sample_interval_s", ctx.plan.get("sample_interval_s", 1.0)))
    results: Dict[int, GpuLoadResult] = {}
    spans: Dict[int, Tuple[float, float]] = {}
    crashes: Dict[int, str] = {}
    stressor, devices = _devices(stressor, nvml, gpus)
    compute_s, power_s = duration * share, duration * power_share
    memory_s = max(0.0, duration - compute_s - power_s)
    work = _Work(stressor, float(opts.get("memory_pct", 90)), compute_s, memory_s, ctx.stop)
    work.power_s = power_s
    threads = _load_threads(work, devices, results, spans, crashes)
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
        gpus[n].power = r.power if power_s > 0 else None  # judged only when the phase was asked for
    for n, tb in sorted(crashes.items()):
        _thread_crashed(result, gpus[n], tb)
    result.evidence.append(_load_evidence(duration, results, _load_gaps(devices, gpus)))
    joined = sorted(n for n, r in results.items() if r.compute.launches > 0 or r.memory.passes > 0)
    window = None
    if joined:
        start, end = max(spans[n][0] for n in joined), min(spans[n][1] for n in joined)
        window = (start, max(start, end))
    # devices and stressor: for the phases after the load (burnin.suites.gpu_copies) to reuse
    return {
        "peak_gpu_power_w": peak,
        "window": window,
        "joined": joined,
        "devices": devices,
        "stressor": stressor,
    }


class _Work:
    """What every load thread runs: the stressor and its phase lengths."""

    def __init__(
        self, stressor: Any, memory_pct: float, compute_s: float, memory_s: float, stop: threading.Event
    ) -> None:
        self.stressor, self.memory_pct, self.stop = stressor, memory_pct, stop
        self.compute_s, self.memory_s = compute_s, memory_s
        self.power_s = 0.0


def _load_threads(
    work: _Work,
    devices: Dict[int, Any],
    results: Dict[int, GpuLoadResult],
    spans: Dict[int, Tuple[float, float]],
    crashes: Dict[int, str],
) -> List[threading.Thread]:
    """One thread per CUDA device (not started); each puts its result in `results`, its start and end
    (epoch seconds) in `spans`, or its traceback in `crashes`, by NVML index. Nothing escapes a thread."""
    threads: List[threading.Thread] = []
    for nvml_index, device in devices.items():

        def body(n: int = nvml_index, d: Any = device) -> None:
            started = time.time()
            try:
                results[n] = work.stressor.run(
                    d, work.compute_s, work.memory_s, work.memory_pct, work.stop, power_s=work.power_s
                )
            except BaseException:
                crashes[n] = traceback.format_exc()
            finally:
                spans[n] = (started, time.time())

        threads.append(threading.Thread(target=body, name=f"gpu-load-{nvml_index}", daemon=True))
    return threads


def _thread_crashed(result: SuiteResult, g: GpuObservation, tb: str) -> None:
    """A load thread died: that GPU is untested. An inconclusive finding naming it with the traceback's
    last line, the traceback as evidence, and the suite's error set (it cannot pass)."""
    last = (tb.strip().splitlines() or ["unknown exception"])[-1]
    ev_id = f"{result.suite}.thread.gpu{g.index}"
    result.evidence.append(
        Evidence(id=ev_id, command=[f"thread gpu-load-{g.index}"], excerpt=tb[-4000:], error=last)
    )
    g.load_error = g.load_error or f"load thread crashed: {last}"
    g.max_pcie_gen = g.max_pcie_width = None  # sampled while nothing loaded it: an idle link proves nothing
    result.findings.append(
        make_finding(
            "suite_thread",
            component(g),
            "the GPU's load thread runs to the end",
            "crashed: " + last,
            Verdict.INCONCLUSIVE,
            "burnin",
            [ev_id],
        )
    )
    result.error = result.error or f"a GPU load thread crashed (gpu{g.index}): {last}"


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
    g.closed_form_mismatches = r.compute.closed_form_mismatches
    copy = r.memory.copy_bytes_per_s
    g.mem_copy_gbs = None if copy is None else round(copy / 1e9, 1)
    if r.compute.launches == 0 and r.memory.passes == 0:
        g.max_pcie_gen = g.max_pcie_width = None  # never loaded: its link was read idle (trained down)
    # only a pass that wrote AND checked the whole buffer proves coverage
    g.memory_tested_bytes = r.memory.tested_bytes if r.memory.passes > 0 else 0
    ctx.log(
        "gpu_load_result",
        gpu=n,
        tflops=(r.compute.flops or 0) / 1e12,
        mem_gbs=(r.memory.bytes_per_s or 0) / 1e9,
        compute_mismatches=r.compute.mismatches,
        memory_mismatches=r.memory.mismatched_words,
        closed_form_mismatches=r.compute.closed_form_mismatches,
        memory_spot_mismatches=r.memory.spot_mismatches,
        mem_copy_gbs=g.mem_copy_gbs,
        error=g.load_fault or g.load_error,
    )


def _load_evidence(duration: float, results: Dict[int, GpuLoadResult], gaps: Optional[str]) -> Evidence:
    return Evidence(
        id="gpu.stress",
        command=["builtin:cuda-ptx", f"duration_s={duration:g}"],
        duration_s=duration,
        excerpt="; ".join(
            "gpu{}: {:.1f} TFLOP/s, {:.0f} GB/s (cuMemcpyDtoD {:.0f} GB/s)".format(
                n,
                (r.compute.flops or 0) / 1e12,
                (r.memory.bytes_per_s or 0) / 1e9,
                (r.memory.copy_bytes_per_s or 0) / 1e9,
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
    if loaded and s.get("power_w") is not None:
        g.power_series.append((time.time(), float(s["power_w"] or 0.0), int(s.get("clock_events") or 0)))
    events = s.get("clock_events")
    if loaded:
        gen, width = hi(g.max_pcie_gen, s.get("pcie_gen")), hi(g.max_pcie_width, s.get("pcie_width"))
        g.max_pcie_gen = None if gen is None else int(gen)
        g.max_pcie_width = None if width is None else int(width)
    if events is not None:
        g.clock_events = (g.clock_events or 0) | int(events)
