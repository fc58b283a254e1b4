"""Telemetry held to policy: CPU temperature ceiling, GPU margin below NVML's slowdown threshold,
and peak power against the feed's continuous rating.

Pure. No series at all is missing evidence (inconclusive), never a pass.
"""

from __future__ import annotations

import re

from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.timeseries import Telemetry
from provision.acceptance.validation.common import finding, fmt, number, select
from provision.model.profile import Profile

_GPU_INDEX = re.compile(r"gpu(\d+)\.")


def check_telemetry(profile: Profile, tel: Telemetry | None, suites: list[SuiteResult]) -> list[Finding]:
    acc = profile.acceptance
    out: list[Finding] = []
    out += _cpu(profile, tel)
    if profile.gpus:
        gpu_suite = next((s for s in suites if s.suite == "gpu"), None)
        slowdown: dict[str, float] = {}
        for part in (select(gpu_suite.measurements, acc.gpu_slowdown_measurement) or []) if gpu_suite else []:
            v = number(part.value)
            if v is not None:
                slowdown[part.key] = v
        out += _gpu(profile, tel, slowdown)
    out += _power(profile, tel)
    return out


def _cpu(profile: Profile, tel: Telemetry | None) -> list[Finding]:
    limit = profile.acceptance.cpu_temp_max_c
    names = sorted({n for p in profile.acceptance.cpu_temp_series for n in tel.matching(p)}) if tel else []
    if not names or tel is None:
        return [
            finding(
                "cpu_temperature", "cpu", f"<= {limit:g} °C", None, Verdict.INCONCLUSIVE, source="telemetry"
            )
        ]
    out = []
    for name in names:
        st = tel.stats(name)
        if st is None:
            out.append(
                finding(
                    "cpu_temperature",
                    name,
                    f"<= {limit:g} °C",
                    None,
                    Verdict.INCONCLUSIVE,
                    source="telemetry",
                )
            )
            continue
        verdict = Verdict.PASS if st.max <= limit else Verdict.FAIL
        out.append(
            finding(
                "cpu_temperature",
                name,
                f"<= {limit:g} °C",
                f"max {st.max:.1f} °C",
                verdict,
                source="telemetry",
            )
        )
    return out


def _gpu(profile: Profile, tel: Telemetry | None, slowdown: dict[str, float]) -> list[Finding]:
    margin = profile.acceptance.gpu_temp_margin_c
    names = tel.matching(profile.acceptance.gpu_temp_series) if tel else []
    if not names or tel is None:
        return [
            finding(
                "gpu_temperature_margin",
                "gpu",
                f"{margin:g} °C below slowdown",
                None,
                Verdict.INCONCLUSIVE,
                source="telemetry",
            )
        ]
    out = []
    for name in names:
        m = _GPU_INDEX.search(name)
        index = m.group(1) if m else name
        st = tel.stats(name)
        limit = slowdown.get(index)
        if limit is None or st is None:
            expected = f"{margin:g} °C below the slowdown threshold (not reported)"
            observed = None if st is None else f"max {st.max:.1f} °C"
            out.append(
                finding(
                    "gpu_temperature_margin",
                    f"gpu:{index}",
                    expected,
                    observed,
                    Verdict.INCONCLUSIVE,
                    source="telemetry",
                )
            )
            continue
        ceiling = limit - margin
        verdict = Verdict.PASS if st.max <= ceiling else Verdict.FAIL
        out.append(
            finding(
                "gpu_temperature_margin",
                f"gpu:{index}",
                f"<= {ceiling:g} °C (slowdown {limit:g} °C - {margin:g})",
                f"max {st.max:.1f} °C",
                verdict,
                source="telemetry",
            )
        )
    return out


def _power(profile: Profile, tel: Telemetry | None) -> list[Finding]:
    power = profile.power
    rating = power.continuous_w
    expected = (
        f"<= {rating:.0f} W ({power.circuit_amps} A x {power.voltage_v} V x "
        f"{power.continuous_pct:g}% continuous, {power.receptacle})"
    )
    node = tel.matching(profile.acceptance.node_power_series) if tel else []
    if tel is not None and node:
        peaks = [st.max for n in node if (st := tel.stats(n)) is not None]
        if peaks:
            peak = max(peaks)
            verdict = Verdict.PASS if peak <= rating else Verdict.FAIL
            return [
                finding(
                    "peak_power",
                    "node",
                    expected,
                    f"peak {fmt(peak, 'W')} (BMC)",
                    verdict,
                    source="telemetry",
                )
            ]
    summed = tel.peak_of_sum(profile.acceptance.part_power_series) if tel else None
    if summed is None:
        return [finding("peak_power", "node", expected, None, Verdict.INCONCLUSIVE, source="telemetry")]
    parts_peak, names = summed
    estimate = parts_peak + power.other_draw_w
    # Without a chassis reading this is an estimate; over the rating it fails all the same.
    verdict = Verdict.PASS if estimate <= rating else Verdict.FAIL
    observed = (
        f"est. {estimate:.0f} W = peak {parts_peak:.0f} W over {len(names)} sensors "
        f"+ {power.other_draw_w} W rest of chassis"
    )
    return [finding("peak_power", "node", expected, observed, verdict, source="telemetry")]
