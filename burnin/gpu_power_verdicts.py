"""Verdicts of the power phase (burnin.gpu_power): the board held near its enforced power limit while the
tensor-core and streaming kernels ran together, or the reason it was not; and the tensor-core kernel's
output against its closed form. Pure.

gpu_sustained_power: the median board power over the phase (its first SETTLE_SHARE left out while the
clocks and fans settle) >= sustain_pct (plan["expect"]["gpus"], default 95) % of the enforced limit
(NVML). Below it: the clock-event reasons seen during the phase decide: HW slowdown, HW power brake or
thermal slowdown fail (the card or its cooling held the clocks down); none of them (SW power cap alone is
the expected limiter) is inconclusive: the load did not prove peak power. Too few samples, no enforced
limit, no phase: inconclusive.
gpu_power_result: mma_burn words differing from the closed form fail; a fault mid-phase fails; a phase
that could not start (no sm_80 JIT, setup) is inconclusive.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List

from burnin.gpu_verdicts import GpuObservation, component
from burnin.schema import Finding, Verdict, make_finding

SETTLE_SHARE = 0.2
MIN_SAMPLES = 3
FAIL_EVENTS = {
    0x8: "HW slowdown",
    0x20: "SW thermal slowdown",
    0x40: "HW thermal slowdown",
    0x80: "HW power brake",
}


def _f(check: str, comp: str, expected: str, observed: str, verdict: Verdict) -> Finding:
    return make_finding(check, comp, expected, observed, verdict, "nvml", ["gpu.stress"])


def power_phase_findings(gpus: List[GpuObservation], exp: Dict[str, Any]) -> List[Finding]:
    pct = float(exp.get("sustain_pct", 95))
    out: List[Finding] = []
    for g in gpus:
        p = g.power
        if p is None:
            continue
        c = component(g)
        out.append(_result(c, p))
        out.append(_sustained(g, c, p, pct))
    return out


def _result(c: str, p: Any) -> Finding:
    want = "tensor-core output = closed form on every launch"
    if p.error and not p.fault and p.launches == 0:
        return _f("gpu_power_result", c, want, f"not run: {p.error}", Verdict.INCONCLUSIVE)
    if p.fault or p.mismatches:
        why = f"{p.mismatches} words differ in {p.launches} launches" + (
            f"; fault: {p.error}" if p.fault else ""
        )
        return _f("gpu_power_result", c, want, why, Verdict.FAIL)
    if p.launches == 0:
        return _f("gpu_power_result", c, want, "no launch completed", Verdict.INCONCLUSIVE)
    return _f("gpu_power_result", c, want, f"0 words differ in {p.launches} launches", Verdict.PASS)


def phase_watts(g: GpuObservation) -> List[float]:
    """The board power samples of the power phase, its settling start left out."""
    p = g.power
    if p is None or p.started is None or p.ended is None:
        return []
    start = p.started + (p.ended - p.started) * SETTLE_SHARE
    return [w for t, w, _ in g.power_series if start <= t <= p.ended]


def sustained_watts(g: GpuObservation) -> Any:
    """The median board power of the power phase (None with fewer than MIN_SAMPLES samples)."""
    watts = phase_watts(g)
    return round(statistics.median(watts), 1) if len(watts) >= MIN_SAMPLES else None


def _sustained(g: GpuObservation, c: str, p: Any, pct: float) -> Finding:
    limit = g.info.get("power_limit_enforced_w")
    want = f">= {pct:g}% of the enforced limit" + (
        f" ({float(limit) * pct / 100:.0f} of {float(limit):g} W)" if limit else ""
    )
    if not limit or p.started is None or p.ended is None:
        why = "no enforced power limit from NVML" if not limit else "the power phase did not run"
        return _f("gpu_sustained_power", c, want, why, Verdict.INCONCLUSIVE)
    start = p.started + (p.ended - p.started) * SETTLE_SHARE
    window = [(w, ev) for t, w, ev in g.power_series if start <= t <= p.ended]
    if len(window) < MIN_SAMPLES:
        return _f(
            "gpu_sustained_power", c, want, f"{len(window)} power samples in the phase", Verdict.INCONCLUSIVE
        )
    watts = [w for w, _ in window]
    mid = statistics.median(watts)
    events = 0
    for _, ev in window:
        events |= ev
    share = mid / float(limit) * 100
    seen = f"median {mid:.0f} W ({share:.1f}%), min {min(watts):.0f} W over {len(watts)} samples"
    if mid >= float(limit) * pct / 100:
        return _f("gpu_sustained_power", c, want, seen, Verdict.PASS)
    held = [name for bit, name in FAIL_EVENTS.items() if events & bit]
    if held:
        return _f("gpu_sustained_power", c, want, f"{seen}; held down by {', '.join(held)}", Verdict.FAIL)
    why = "SW power cap" if events & 0x4 else "no clock-event reason"
    return _f(
        "gpu_sustained_power",
        c,
        want,
        f"{seen}; {why}: the load did not reach the limit",
        Verdict.INCONCLUSIVE,
    )
