"""GPU verdicts: what the GPU suite observed, judged against plan["expect"]["gpus"]. Pure.

Keys read from plan["expect"]["gpus"] (all optional; a missing threshold makes its check inconclusive
and not required, a missing fact skips the comparison it feeds):
  count (int), name (str, exact NVML name), pci_device_id (str, "0x2bb4"), compute_capability (str, "12.0"),
  memory_mib (int), memory_tolerance_pct (float, default 0.5),
  pcie_gen (int), pcie_width (int), power_limit_w (float), ecc_required (bool, default True),
  temp_margin_c (float, default 5), throughput_spread_pct (float, default 7),
  min_tflops (float, floor of our FP32 FMA kernel in TFLOP/s) or else
  fp32_tflops (datasheet FP32 peak) x compute_floor_pct (default 50) / 100,
  min_mem_gbs (float, floor of our write+check kernels in GB/s) or else
  mem_bandwidth_gbs (datasheet GB/s) x mem_floor_pct (default 80) / 100,
  feed_continuous_w (float, the circuit's continuous rating), non_gpu_draw_w (float, default 0: the rest
  of the node while the GPUs burn), xid_fatal (list of int, default XID_FATAL).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from burnin.schema import Finding, Verdict, make_finding

# The XIDs that fail a node in Azure's HPC node health checks (Azure/azurehpc-health-checks,
# customTests/azure_gpu_xid.nhc); any other XID is a warning.
XID_FATAL = (48, 56, 57, 58, 62, 63, 64, 65, 68, 69, 73, 74, 79, 80, 81, 92, 119, 120)
# Clock-event bits that mean the hardware, not policy, held the clocks down. SwPowerCap (0x4) is normal.
HW_CLOCK_EVENTS = {
    0x8: "HwSlowdown",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrake",
}
SLOWDOWN_COUNTERS = ("sw_thermal_slowdown_ns", "hw_thermal_slowdown_ns", "hw_power_brake_ns")


@dataclass
class GpuObservation:
    index: int
    info: Dict[str, Any]  # nvml.Nvml.describe()
    lost: Optional[str] = None  # why, when the GPU fell off the bus during the run
    samples: int = 0  # telemetry ticks taken under load
    max_temp_c: Optional[float] = None
    max_power_w: Optional[float] = None
    clock_events: Optional[int] = None  # OR of every sampled bitmask
    max_pcie_gen: Optional[int] = None  # highest current gen/width seen under load
    max_pcie_width: Optional[int] = None
    before: Dict[str, Optional[int]] = field(default_factory=dict)  # counters at start
    after: Dict[str, Optional[int]] = field(default_factory=dict)  # counters at end
    xid_watched: bool = False
    flops: Optional[float] = None
    mem_bytes_per_s: Optional[float] = None
    mem_copy_gbs: Optional[float] = None  # the cuMemcpyDtoD reference of the same traffic, GB/s
    compute_mismatches: Optional[int] = None
    memory_mismatches: Optional[int] = None
    closed_form_mismatches: Optional[int] = None  # compute words differing from the closed-form value
    memory_tested_bytes: int = 0  # bytes the memory kernel wrote and checked in at least one whole pass
    reference_digest: Optional[str] = None
    load_error: Optional[str] = None  # the stressor could not run here (setup): inconclusive
    load_fault: Optional[str] = None  # the stressor failed mid-load: a fault
    power: Any = None  # burnin.gpu_power.PowerResult of the power phase (None: not run)
    power_series: List[Tuple[float, float, int]] = field(default_factory=list)  # (epoch s, W, clock events)


def _f(
    check: str, comp: str, expected: str, observed: str, verdict: Verdict, required: bool = True
) -> Finding:
    evidence = ["gpu.stress"] if check.startswith(("gpu_stress", "gpu_throughput")) else ["gpu.nvml"]
    return make_finding(check, comp, expected, observed, verdict, "nvml", evidence, required)


def component(obs: GpuObservation) -> str:
    serial = obs.info.get("serial") or obs.info.get("uuid")
    return f"gpu:{obs.index}" + (f" ({serial})" if serial else "")


def inventory_findings(gpus: List[GpuObservation], exp: Dict[str, Any]) -> List[Finding]:
    out: List[Finding] = []
    if "count" in exp:
        n = len(gpus)
        out.append(
            _f(
                "gpu_count",
                "node",
                str(exp["count"]),
                str(n),
                Verdict.PASS if n == exp["count"] else Verdict.FAIL,
            )
        )
    for g in gpus:
        c, info = component(g), g.info
        if exp.get("name"):
            name = info.get("name")
            v = (
                Verdict.INCONCLUSIVE
                if name is None
                else Verdict.PASS
                if name == exp["name"]
                else Verdict.FAIL
            )
            out.append(_f("gpu_name", c, exp["name"], str(name), v))
        for key, check in (
            ("pci_device_id", "gpu_pci_device_id"),
            ("compute_capability", "gpu_compute_capability"),
        ):
            if exp.get(key):
                seen = info.get(key)
                v = (
                    Verdict.INCONCLUSIVE
                    if seen is None
                    else Verdict.PASS
                    if seen == exp[key]
                    else Verdict.FAIL
                )
                out.append(_f(check, c, str(exp[key]), str(seen), v))
        if exp.get("memory_mib"):
            mem, tol = info.get("memory_mib"), float(exp.get("memory_tolerance_pct", 0.5))
            want = float(exp["memory_mib"])
            ok = mem is not None and abs(mem - want) <= want * tol / 100
            v = Verdict.INCONCLUSIVE if mem is None else Verdict.PASS if ok else Verdict.FAIL
            out.append(_f("gpu_memory", c, f"{exp['memory_mib']} MiB ±{tol}%", f"{mem} MiB", v))
        if exp.get("ecc_required", True):
            cur, pend = info.get("ecc_current"), info.get("ecc_pending")
            v = (
                Verdict.INCONCLUSIVE
                if cur is None
                else Verdict.PASS
                if cur and pend is not False
                else Verdict.FAIL
            )
            out.append(
                _f("gpu_ecc_mode", c, "enabled (current and pending)", f"current={cur} pending={pend}", v)
            )
        if exp.get("power_limit_w"):
            lim = info.get("power_limit_enforced_w")
            ok = lim is not None and abs(lim - float(exp["power_limit_w"])) <= 1.0
            v = Verdict.INCONCLUSIVE if lim is None else Verdict.PASS if ok else Verdict.WARN
            out.append(_f("gpu_power_limit", c, f"{exp['power_limit_w']} W enforced", f"{lim} W", v))
    return out


def health_findings(
    gpus: List[GpuObservation], exp: Dict[str, Any], xids: List[Dict[str, Any]]
) -> List[Finding]:
    out: List[Finding] = []
    fatal = set(int(x) for x in exp.get("xid_fatal", XID_FATAL))
    margin = float(exp.get("temp_margin_c", 5.0))
    for g in gpus:
        c = component(g)
        out.append(
            _f(
                "gpu_present",
                c,
                "on the bus for the whole run",
                g.lost or "present",
                Verdict.FAIL if g.lost else Verdict.PASS,
            )
        )
        out.append(_pcie(g, c, exp))
        mine = [e for e in xids if e.get("gpu") in (g.index, None)]
        bad = [e["xid"] for e in mine if e["xid"] in fatal]
        if bad:
            v, obs = Verdict.FAIL, "fatal XID " + ", ".join(str(x) for x in bad)
        elif mine:
            v, obs = Verdict.WARN, "XID " + ", ".join(str(e["xid"]) for e in mine)
        elif not g.xid_watched:
            v, obs = Verdict.INCONCLUSIVE, "XID events could not be watched on this GPU"
        else:
            v, obs = Verdict.PASS, "no XID"
        out.append(_f("gpu_xid", c, "no XID from " + ",".join(str(x) for x in sorted(fatal)), obs, v))
        out.extend(_memory_errors(g, c))
        out.append(_clock_events(g, c))
        slow = g.info.get("slowdown_c")
        if g.max_temp_c is None or slow is None:
            out.append(
                _f(
                    "gpu_temperature",
                    c,
                    f"{margin} °C below slowdown",
                    f"max {g.max_temp_c} °C, slowdown {slow}",
                    Verdict.INCONCLUSIVE,
                )
            )
        else:
            ok = g.max_temp_c <= slow - margin
            out.append(
                _f(
                    "gpu_temperature",
                    c,
                    f"≤ {slow - margin:g} °C (slowdown {slow} − {margin:g})",
                    f"max {g.max_temp_c:g} °C",
                    Verdict.PASS if ok else Verdict.FAIL,
                )
            )
    return out


def _pcie(g: GpuObservation, c: str, exp: Dict[str, Any]) -> Finding:
    want_gen, want_w = exp.get("pcie_gen"), exp.get("pcie_width")
    expected = f"Gen{want_gen} x{want_w} under load"
    if not want_gen and not want_w:
        return _f("gpu_pcie_link", c, "no expectation in the plan", "-", Verdict.INCONCLUSIVE, required=False)
    if g.max_pcie_gen is None or g.max_pcie_width is None:
        return _f("gpu_pcie_link", c, expected, "link not read under load", Verdict.INCONCLUSIVE)
    capable = f"Gen{g.info.get('pcie_gen_max')} x{g.info.get('pcie_width_max')}"
    observed = f"Gen{g.max_pcie_gen} x{g.max_pcie_width} (capable {capable})"
    ok = g.max_pcie_gen >= (want_gen or 0) and g.max_pcie_width >= (want_w or 0)
    return _f("gpu_pcie_link", c, expected, observed, Verdict.PASS if ok else Verdict.FAIL)


def _delta(g: GpuObservation, key: str) -> Optional[int]:
    a, b = g.after.get(key), g.before.get(key)
    return None if a is None or b is None else a - b


def _memory_errors(g: GpuObservation, c: str) -> List[Finding]:
    out: List[Finding] = []
    unc = [g.after.get(k) for k in ("ecc_uncorrected_volatile", "ecc_uncorrected_aggregate")]
    if all(v is None for v in unc):
        out.append(_f("gpu_ecc_uncorrected", c, "0", "ECC counters not available", Verdict.INCONCLUSIVE))
    else:
        total = sum(v for v in unc if v)
        out.append(
            _f(
                "gpu_ecc_uncorrected",
                c,
                "0 (volatile and aggregate)",
                f"volatile={unc[0]} aggregate={unc[1]}",
                Verdict.PASS if total == 0 else Verdict.FAIL,
            )
        )
    corr = _delta(g, "ecc_corrected_volatile")
    if corr is not None:
        out.append(
            _f(
                "gpu_ecc_corrected",
                c,
                "no new corrected errors",
                f"+{corr}",
                Verdict.PASS if corr == 0 else Verdict.WARN,
                required=False,
            )
        )
    rows = [g.after.get(k) for k in ("remap_corr_rows", "remap_unc_rows", "remap_pending", "remap_failure")]
    if rows[2] is None:
        out.append(
            _f(
                "gpu_row_remap",
                c,
                "no pending or failed remap",
                "row remapping not available",
                Verdict.INCONCLUSIVE,
                required=False,
            )
        )
    else:
        bad = bool(rows[1]) or bool(rows[2]) or bool(rows[3])
        v = Verdict.FAIL if bad else Verdict.WARN if rows[0] else Verdict.PASS
        observed = (
            f"corrected={rows[0]} uncorrected={rows[1]} pending={bool(rows[2])} failure={bool(rows[3])}"
        )
        out.append(_f("gpu_row_remap", c, "no pending or failed remap, 0 uncorrectable rows", observed, v))
    replay = _delta(g, "pcie_replay")
    if replay is not None:
        out.append(
            _f(
                "gpu_pcie_replay",
                c,
                "no new PCIe replays",
                f"+{replay}",
                Verdict.PASS if replay == 0 else Verdict.WARN,
                required=False,
            )
        )
    return out


def _clock_events(g: GpuObservation, c: str) -> Finding:
    expected = "no HW slowdown, thermal or power-brake clock events (SW power cap allowed)"
    seen = [
        name for bit, name in HW_CLOCK_EVENTS.items() if g.clock_events is not None and g.clock_events & bit
    ]
    seen += [k for k in SLOWDOWN_COUNTERS if (_delta(g, k) or 0) > 0]
    if seen:
        return _f("gpu_clock_events", c, expected, ", ".join(seen), Verdict.FAIL)
    if g.clock_events is None:
        return _f("gpu_clock_events", c, expected, "clock-event reasons not read", Verdict.INCONCLUSIVE)
    return _f("gpu_clock_events", c, expected, f"reasons seen 0x{g.clock_events:x}", Verdict.PASS)


def stress_findings(gpus: List[GpuObservation], exp: Dict[str, Any]) -> List[Finding]:
    out: List[Finding] = []
    digests = [g.reference_digest for g in gpus if g.reference_digest]
    majority = max(set(digests), key=digests.count) if digests else None
    for g in gpus:
        c = component(g)
        closed = g.closed_form_mismatches or 0
        bad = (g.compute_mismatches or 0) + (g.memory_mismatches or 0) + closed
        odd = g.reference_digest is not None and len(set(digests)) > 1 and g.reference_digest != majority
        if g.load_fault:
            out.append(_f("gpu_stress_result", c, "load runs to the end", g.load_fault, Verdict.FAIL))
        elif (
            g.compute_mismatches is None or g.memory_mismatches is None or (g.load_error and not (bad or odd))
        ):
            out.append(
                _f(
                    "gpu_stress_result",
                    c,
                    "0 mismatched words",
                    g.load_error or "stressor did not run",
                    Verdict.INCONCLUSIVE,
                )
            )
        else:  # a mismatch in either phase fails, even when the other phase could not run
            observed = f"compute {g.compute_mismatches}, memory {g.memory_mismatches} mismatched words" + (
                "; reference launch differs from the other GPUs" if odd else ""
            )
            observed += f"; {closed} compute words differ from the closed-form value" if closed else ""
            observed += f"; {g.load_error}" if g.load_error else ""
            out.append(
                _f(
                    "gpu_stress_result",
                    c,
                    "0 mismatched words, the closed-form result, same as the other GPUs",
                    observed,
                    Verdict.FAIL if bad or odd else Verdict.PASS,
                )
            )
    floor_mem = exp.get("min_mem_gbs")
    if floor_mem is None and exp.get("mem_bandwidth_gbs"):
        floor_mem = float(exp["mem_bandwidth_gbs"]) * float(exp.get("mem_floor_pct", 80)) / 100
    floor_tflops = exp.get("min_tflops")
    if floor_tflops is None and exp.get("fp32_tflops"):
        floor_tflops = float(exp["fp32_tflops"]) * float(exp.get("compute_floor_pct", 50)) / 100
    spread = float(exp.get("throughput_spread_pct", 7.0))
    out += _throughput(gpus, "compute", lambda g: g.flops, 1e12, "TFLOP/s", floor_tflops, spread)
    out += _throughput(gpus, "memory", lambda g: g.mem_bytes_per_s, 1e9, "GB/s", floor_mem, spread)
    return out


def _throughput(
    gpus: List[GpuObservation], kind: str, get: Any, unit: float, label: str, floor: Any, spread: float
) -> List[Finding]:
    out: List[Finding] = []
    values = [get(g) / unit for g in gpus if get(g)]
    median = statistics.median(values) if values else None
    for g in gpus:
        c, v = component(g), get(g)
        check = f"gpu_throughput_{kind}"
        if v is None or median is None:
            out.append(
                _f(check, c, f"within {spread:g}% of node median", "not measured", Verdict.INCONCLUSIVE)
            )
            out.append(
                _f(
                    check + "_floor",
                    c,
                    "above the profile floor",
                    "not measured",
                    Verdict.INCONCLUSIVE,
                    required=floor is not None,
                )
            )
            continue
        x = v / unit
        off = abs(x - median) / median * 100 if median else 0.0
        out.append(
            _f(
                check,
                c,
                f"within {spread:g}% of node median {median:.1f} {label}",
                f"{x:.1f} {label} ({off:.1f}% off)",
                Verdict.PASS if off <= spread else Verdict.FAIL,
            )
        )
        if floor is None:
            out.append(
                _f(
                    check + "_floor",
                    c,
                    "a floor in the profile",
                    f"{x:.1f} {label}; no floor set",
                    Verdict.INCONCLUSIVE,
                    required=False,
                )
            )
        else:
            out.append(
                _f(
                    check + "_floor",
                    c,
                    f"≥ {float(floor):.1f} {label}",
                    f"{x:.1f} {label}",
                    Verdict.PASS if x >= float(floor) else Verdict.FAIL,
                )
            )
    return out


def power_finding(peak_node_gpu_w: Optional[float], exp: Dict[str, Any]) -> Finding:
    feed = exp.get("feed_continuous_w")
    other = float(exp.get("non_gpu_draw_w", 0))
    if feed is None:
        return _f(
            "gpu_node_power",
            "node",
            "a feed rating in the plan",
            f"GPU peak {peak_node_gpu_w} W",
            Verdict.INCONCLUSIVE,
            required=False,
        )
    if peak_node_gpu_w is None:
        return _f("gpu_node_power", "node", f"≤ {feed} W", "GPU power not read", Verdict.INCONCLUSIVE)
    total = peak_node_gpu_w + other
    observed = f"{total:.0f} W (GPUs {peak_node_gpu_w:.0f} W + rest of node {other:.0f} W)"
    return _f(
        "gpu_node_power",
        "node",
        f"≤ {float(feed):.0f} W continuous",
        observed,
        Verdict.PASS if total <= float(feed) else Verdict.FAIL,
    )
