"""Suite results held to the profile: every planned suite ran to its end, the agent's own findings,
performance floors (of a theoretical peak or of the golden host), spread between sibling parts, and
error counters that must stay at zero.

Pure.
"""

from __future__ import annotations

from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.golden import Golden
from provision.acceptance.validation.common import Part, finding, fmt, median, number, select, time_share
from provision.model.profile import Acceptance, Counter, Floor, PeakOf, Profile

MEMORY_BYTES_PER_TRANSFER = 8


def peak_of(profile: Profile, floor: Floor) -> float | None:
    if floor.peak is not None:
        return floor.peak
    if floor.peak_of is PeakOf.memory_bandwidth:
        mem = profile.memory
        channels = mem.populated_channels_per_socket * profile.cpu.sockets
        return mem.configured_mts_expected * MEMORY_BYTES_PER_TRANSFER * channels / 1000  # GB/s
    if floor.peak_of is PeakOf.gpu_memory_bandwidth and profile.gpus:
        return float(profile.gpus.mem_bandwidth_gbs)
    return None


def _pcts(profile: Profile, floor: Floor) -> tuple[float | None, float | None]:
    if floor.peak_of is PeakOf.memory_bandwidth:
        return (
            floor.fail_below_pct if floor.fail_below_pct is not None else profile.memory.triad_fail_below_pct,
            floor.warn_below_pct if floor.warn_below_pct is not None else profile.memory.triad_warn_below_pct,
        )
    return floor.fail_below_pct, floor.warn_below_pct


def check_suites(
    profile: Profile | None,
    planned: list[dict[str, object]],
    suites: list[SuiteResult],
    golden: Golden | None,
) -> list[Finding]:
    by_name = {s.suite: s for s in suites}
    out: list[Finding] = []
    planned_names = []
    waived = profile.acceptance if profile else None
    for spec in planned:
        name = str(spec.get("suite"))
        planned_names.append(name)
        planned_s = number(spec.get("duration_s"))
        out.append(_completed(name, bool(spec.get("required", True)), by_name.get(name), waived, planned_s))
    for s in suites:
        if s.suite not in planned_names:
            out.append(_completed(s.suite, True, s, waived, None))
        out += s.findings
    if profile is None:
        return out
    ran = set(planned_names) | set(by_name)
    for floor in profile.acceptance.floors:
        if floor.suite.value in ran:
            out += _floor(profile, floor, by_name.get(floor.suite.value), golden)
    for counter in profile.acceptance.counters:
        if counter.suite.value in ran:
            out += _counter(counter, by_name.get(counter.suite.value))
    return out


def _evidence(suite: SuiteResult | None) -> list[str]:
    return [e.id for e in suite.evidence] if suite else []


def _completed(
    name: str, required: bool, suite: SuiteResult | None, waived: Acceptance | None, planned_s: float | None
) -> Finding:
    """The suite ran to its end and its own verdict stands: a crashed, stopped or cancelled suite, one
    that ran well short of its planned time (`time_share`), or one whose own verdict is inconclusive,
    is inconclusive here too. A suite inconclusive only on checks the profile waives
    (`acceptance.not_required`) has given what this node class can give."""
    comp = f"suite:{name}"
    if suite is None:
        return finding(
            "suite_completed",
            comp,
            "ran to its end",
            "no result",
            Verdict.INCONCLUSIVE,
            source="burnin",
            required=required,
        )
    if suite.error:
        return finding(
            "suite_completed",
            comp,
            "ran to its end",
            f"stopped: {suite.error}",
            Verdict.INCONCLUSIVE,
            source="burnin",
            evidence=_evidence(suite),
            required=required,
        )
    elapsed = suite.ended_at - suite.started_at
    if planned_s is not None and elapsed < planned_s * time_share(name):
        return finding(
            "suite_completed",
            comp,
            "ran to its end",
            f"stopped early: ran {elapsed:.0f} s of the {planned_s:g} s planned",
            Verdict.INCONCLUSIVE,
            source="burnin",
            evidence=_evidence(suite),
            required=required,
        )
    took = f"ran {elapsed:.0f} s, suite verdict {suite.verdict.value}"
    verdict = Verdict.PASS
    if suite.verdict is Verdict.INCONCLUSIVE:
        open_checks = [f for f in suite.findings if f.required and f.verdict is Verdict.INCONCLUSIVE]
        if not open_checks or any(
            waived is None or not waived.waiver(f.check, f.component) for f in open_checks
        ):
            verdict = Verdict.INCONCLUSIVE
        else:
            took += " (only on waived checks: " + ", ".join(sorted({f.check for f in open_checks})) + ")"
    return finding(
        "suite_completed",
        comp,
        "ran to its end",
        took,
        verdict,
        source="burnin",
        evidence=_evidence(suite),
        required=required,
    )


def _parts(suite: SuiteResult | None, path: str) -> list[Part] | None:
    return select(suite.measurements, path) if suite else None


def _of_floor(
    floor: Floor,
    check: str,
    component: str,
    expected: object,
    observed: object,
    verdict: Verdict,
    ev: list[str],
) -> Finding:
    return finding(
        check, component, expected, observed, verdict, source="burnin", evidence=ev, required=floor.required
    )


def _grade(v: float, fail_at: float, warn_at: float) -> Verdict:
    return Verdict.FAIL if v < fail_at else Verdict.WARN if v < warn_at else Verdict.PASS


def _vs_peak(
    floor: Floor, part: Part, v: float, peak: float, pcts: tuple[float, float | None], ev: list[str]
) -> Finding:
    fail_pct, warn_pct = pcts
    fail_at = peak * fail_pct / 100
    warn_at = peak * warn_pct / 100 if warn_pct is not None else fail_at
    expected = f">= {fmt(fail_at, floor.unit)} ({fail_pct:g}% of peak {fmt(peak, floor.unit)})"
    observed = f"{fmt(v, floor.unit)} ({100 * v / peak:.1f}% of peak)"
    return _of_floor(floor, floor.check, part.label, expected, observed, _grade(v, fail_at, warn_at), ev)


def _vs_golden(floor: Floor, part: Part, v: float, golden: Golden | None, ev: list[str]) -> Finding | None:
    """The part against the golden host's figure; None without a golden host or a positive figure."""
    ref = golden.reference(floor.suite.value, floor.measurement) if golden else None
    # `ref > 0` rather than `ref <= 0` below: a NaN figure must be skipped too.
    if golden is None or ref is None or not ref > 0:
        return None
    fail_at, warn_at = (
        ref * floor.golden_fail_below_pct / 100,
        ref * floor.golden_warn_below_pct / 100,
    )
    expected = (
        f">= {fmt(fail_at, floor.unit)} ({floor.golden_fail_below_pct:g}% of golden "
        f"{golden.host} {fmt(ref, floor.unit)})"
    )
    observed = f"{fmt(v, floor.unit)} ({100 * v / ref:.1f}% of golden)"
    verdict = _grade(v, fail_at, warn_at)
    return _of_floor(floor, f"{floor.check}_vs_golden", part.label, expected, observed, verdict, ev)


def _spread(
    floor: Floor, spread_pct: float, values: list[tuple[Part, float]], ev: list[str]
) -> list[Finding]:
    """Each sibling part against their median: a slow GPU among fast ones stands out."""
    mid = median([v for _, v in values])
    out = []
    for part, v in values:
        dev = 100 * (v - mid) / mid if mid else 0.0
        verdict = Verdict.FAIL if abs(dev) > spread_pct else Verdict.PASS
        expected = f"within ±{spread_pct:g}% of the median {fmt(mid, floor.unit)}"
        observed = f"{fmt(v, floor.unit)} ({dev:+.1f}%)"
        out.append(_of_floor(floor, f"{floor.check}_spread", part.label, expected, observed, verdict, ev))
    return out


def _floor(profile: Profile, floor: Floor, suite: SuiteResult | None, golden: Golden | None) -> list[Finding]:
    ev = _evidence(suite)
    parts = _parts(suite, floor.measurement)
    peak = peak_of(profile, floor)
    fail_pct, warn_pct = _pcts(profile, floor)
    if not parts:
        measured = f"{floor.suite.value}.{floor.measurement} measured"
        return [_of_floor(floor, floor.check, "node", measured, None, Verdict.INCONCLUSIVE, ev)]
    out: list[Finding] = []
    values: list[tuple[Part, float]] = []
    for part in parts:
        v = number(part.value)
        if v is None:
            out.append(
                _of_floor(
                    floor, floor.check, part.label, "a number", repr(part.value), Verdict.INCONCLUSIVE, ev
                )
            )
            continue
        values.append((part, v))
        if peak is not None and fail_pct is not None:
            out.append(_vs_peak(floor, part, v, peak, (fail_pct, warn_pct), ev))
        vs_golden = _vs_golden(floor, part, v, golden, ev)
        if vs_golden is not None:
            out.append(vs_golden)
    if floor.spread_pct is not None and len(values) >= 2:
        out += _spread(floor, floor.spread_pct, values, ev)
    return out


def _counter(counter: Counter, suite: SuiteResult | None) -> list[Finding]:
    ev = _evidence(suite)
    parts = _parts(suite, counter.measurement)
    if not parts:
        return [
            finding(
                counter.check,
                "node",
                f"<= {counter.max}",
                None,
                Verdict.INCONCLUSIVE,
                source="burnin",
                evidence=ev,
                required=counter.required,
            )
        ]
    out = []
    for part in parts:
        v = number(part.value)
        ok = v is not None and v <= counter.max
        verdict = Verdict.INCONCLUSIVE if v is None else Verdict.PASS if ok else Verdict.FAIL
        observed = repr(part.value) if v is None else f"{v:g}"
        out.append(
            finding(
                counter.check,
                part.label,
                f"<= {counter.max}",
                observed,
                verdict,
                source="burnin",
                evidence=ev,
                required=counter.required,
            )
        )
    return out
