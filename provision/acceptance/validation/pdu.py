"""The PDU's word on the burn-in (the run's power.jsonl, written by provision.pdu.sampler). Pure.

- `pdu_circuit_peak`: the circuit's measured peak (the PDU's inlets, else all its outlets: every
  host on that circuit, not only this one) within its continuous rating from site.yaml.
- `pdu_bmc_agree`: the host's outlet and its BMC's chassis reading agree. They are different meters
  (PDU: revenue-grade at the wall; BMC: PSU input, often +-5%), sampled a moment apart, so the
  tolerance is the larger of AGREE_PCT of the BMC's reading and AGREE_W, compared on the medians of
  the paired samples (a transient in one of them does not decide). A larger gap almost always means
  the outlet map is wrong (hosts.yaml `pdu_outlet` names another host's outlet, or an idle one).

No power.jsonl (the site declares no PDU for this host: a PDU is optional equipment): one optional
inconclusive finding. A file whose samples hold no readings: required inconclusive findings, as the
site declared the PDU and its evidence is missing. Never 0 W in place of a missing reading.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from burnin.schema import Finding, Verdict
from provision.acceptance.validation.common import finding
from provision.pdu.meters import CIRCUIT_W, NODE_W, OUTLET_W, POWER_FILE

AGREE_PCT = 15.0
AGREE_W = 150.0
SOURCE = "pdu"


@dataclass
class PowerLog:
    """power.jsonl parsed: the sampler's meta line and its samples (time, values, errors)."""

    meta: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, dict[str, float], dict[str, str]]] = field(default_factory=list)
    bad_lines: int = 0


def parse_power_log(lines: Iterable[str]) -> PowerLog:
    log = PowerLog()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            log.bad_lines += 1  # a line cut short by a controller killed mid-write
            continue
        if not isinstance(obj, dict):
            log.bad_lines += 1
        elif isinstance(obj.get("meta"), dict):
            log.meta = obj["meta"]
        elif isinstance(obj.get("t"), int | float) and isinstance(obj.get("v"), dict):
            values = {
                k: float(v)
                for k, v in obj["v"].items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            errors = {str(k): str(v) for k, v in (obj.get("errors") or {}).items()}
            log.samples.append((float(obj["t"]), values, errors))
        else:
            log.bad_lines += 1
    return log


def _first_error(log: PowerLog, part: str) -> str | None:
    return next((e[part] for _, _, e in log.samples if part in e), None)


def check_pdu(log: PowerLog | None) -> list[Finding]:
    if log is None:
        return [
            finding(
                "pdu_circuit_peak",
                "pdu",
                "the circuit's measured peak within its continuous rating",
                f"no PDU readings with this run (no {POWER_FILE}: site.yaml declares no PDU for this host)",
                Verdict.INCONCLUSIVE,
                source=SOURCE,
                required=False,
            )
        ]
    return [_circuit_peak(log), _agreement(log)]


def _circuit_peak(log: PowerLog) -> Finding:
    pdu = str(log.meta.get("pdu") or "pdu")
    rating = log.meta.get("rating_w")
    expected = f"<= {log.meta.get('rating') or rating} on {pdu} (the whole circuit)"
    peaks = [(v[CIRCUIT_W], t) for t, v, _ in log.samples if CIRCUIT_W in v]
    if not peaks or not isinstance(rating, int | float):
        why = _first_error(log, "pdu") or "no sample taken"
        observed = f"no circuit reading in {len(log.samples)} sample(s): {why}"
        return finding(
            "pdu_circuit_peak",
            pdu,
            expected,
            observed,
            Verdict.INCONCLUSIVE,
            source=SOURCE,
            evidence=(POWER_FILE,),
        )
    peak, _ = max(peaks)
    failed = len(log.samples) - len(peaks)
    observed = f"peak {peak:.0f} W ({peak / rating:.0%} of {rating:.0f} W) over {len(peaks)} sample(s)"
    if failed:
        observed += f"; {failed} sample(s) without a reading"
    verdict = Verdict.PASS if peak <= rating else Verdict.FAIL
    return finding(
        "pdu_circuit_peak", pdu, expected, observed, verdict, source=SOURCE, evidence=(POWER_FILE,)
    )


def _agreement(log: PowerLog) -> Finding:
    pdu, outlet = str(log.meta.get("pdu") or "pdu"), log.meta.get("outlet")
    component = f"{pdu}/outlet-{outlet}"
    expected = (
        f"the BMC's chassis reading and {pdu} outlet {outlet} within {AGREE_PCT:g}% or {AGREE_W:.0f} W "
        "(the larger), medians of paired samples"
    )
    pairs = [(v[NODE_W], v[OUTLET_W]) for _, v, _ in log.samples if NODE_W in v and OUTLET_W in v]
    if not pairs:
        why = (
            "; ".join(
                f"{part}: {err}" for part in ("pdu", "bmc") if (err := _first_error(log, part)) is not None
            )
            or "no sample taken"
        )
        observed = f"no sample with both readings in {len(log.samples)} sample(s): {why}"
        return finding(
            "pdu_bmc_agree",
            component,
            expected,
            observed,
            Verdict.INCONCLUSIVE,
            source=SOURCE,
            evidence=(POWER_FILE,),
        )
    bmc = statistics.median(b for b, _ in pairs)
    outlet_w = statistics.median(o for _, o in pairs)
    gap = abs(bmc - outlet_w)
    tolerance = max(bmc * AGREE_PCT / 100.0, AGREE_W)
    observed = (
        f"BMC {bmc:.0f} W, outlet {outlet_w:.0f} W (gap {gap:.0f} W, tolerance {tolerance:.0f} W) "
        f"over {len(pairs)} paired sample(s)"
    )
    if gap <= tolerance:
        return finding(
            "pdu_bmc_agree",
            component,
            expected,
            observed,
            Verdict.PASS,
            source=SOURCE,
            evidence=(POWER_FILE,),
        )
    observed += (
        f": outlet {outlet} of {pdu} is probably not this host's (a wrong outlet map: check hosts.yaml "
        f"pdu/pdu_outlet against the PDU's labels with `provision pdu {pdu}`)"
    )
    return finding(
        "pdu_bmc_agree", component, expected, observed, Verdict.FAIL, source=SOURCE, evidence=(POWER_FILE,)
    )
