"""Helpers every check shares: building findings, reading suite measurements, comparing versions.

Pure: no I/O.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from burnin.schema import Finding, Verdict, make_finding

MISSING = "(not reported)"

# Share of its planned time a suite must really have run (ended_at - started_at) to have run "to
# its end". Loads that run for the plan's time by construction (stress-ng, fio time_based, the CUDA
# load, the soak) show nearly all of it. The memory suite's time is half stress-ng (time-bound) and
# half memtester, which runs whole loops sized to that half at a measured rate and may end early:
# its work is held to the contract's `memory_tested_pct` coverage floor instead.
TIME_SHARE: dict[str, float] = {"memory": 0.5}
DEFAULT_TIME_SHARE = 0.9


def time_share(suite: str) -> float:
    return TIME_SHARE.get(suite, DEFAULT_TIME_SHARE)


@dataclass(frozen=True)
class Part:
    """One value found under a measurement path: the part it belongs to, and the value."""

    key: str  # "" for a node-level value, else the list index / mapping key the `*` matched
    label: str  # component text for the finding
    value: Any


def finding(
    check: str,
    component: str,
    expected: object,
    observed: object,
    verdict: Verdict,
    *,
    source: str,
    evidence: Sequence[str] = (),
    required: bool = True,
    suffix: str = "",
) -> Finding:
    observed_text = MISSING if observed is None else str(observed)
    return make_finding(
        check, component, str(expected), observed_text, verdict, source, evidence, required, suffix
    )


def equal(
    check: str, component: str, expected: object, observed: object, *, source: str, required: bool = True
) -> Finding:
    """Exact comparison; a value the source did not report is inconclusive, never a pass."""
    if observed is None:
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.PASS if observed == expected else Verdict.FAIL
    suffix = "" if source == "os" else f"@{source}"
    return finding(
        check, component, expected, observed, verdict, source=source, required=required, suffix=suffix
    )


def _label(part: dict[str, Any] | Any, key: str, kind: str) -> str:
    if ":" in key:  # already a component name ("nvme:S6XX..."), as the agent keys its parts
        return key
    if isinstance(part, dict):
        ident = part.get("index", part.get("name", key))
        serial = part.get("serial")
        return f"{kind}:{ident}" + (f" (serial {serial})" if serial else "")
    return f"{kind}:{key}"


def select(measurements: dict[str, Any], path: str) -> list[Part] | None:
    """Values at a dotted path; `*` fans out over a list or mapping. None when the path is absent."""
    steps = path.split(".")
    found: list[Part] = []

    def walk(node: Any, i: int, key: str, label: str) -> None:
        if i == len(steps):
            found.append(Part(key, label, node))
            return
        step = steps[i]
        if step == "*":
            items: Iterator[tuple[str, Any]]
            if isinstance(node, list):
                items = ((str(j), v) for j, v in enumerate(node))
            elif isinstance(node, dict):
                items = ((str(k), v) for k, v in node.items())
            else:
                return
            kind = steps[i - 1].removeprefix("per_").rstrip("s") if i > 0 else "part"
            for k, v in items:
                walk(v, i + 1, k, _label(v, k, kind))
        elif isinstance(node, dict) and step in node:
            walk(node[step], i + 1, key, label)

    walk(measurements, 0, "", "node")
    return found or None


def number(value: Any) -> float | None:
    """A measurement as a float; booleans, text and NaN are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return None if as_float != as_float else as_float


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(text: str) -> tuple[tuple[int, int | str], ...] | None:
    """'1.10a' -> ((0, 1), (0, 10), (1, 'a')): numeric parts compare as numbers. None: no digits."""
    parts = _VERSION_PART.findall(text)
    if not any(p.isdigit() for p in parts):
        return None
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts)


def fmt(value: float, unit: str = "") -> str:
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {unit}".strip()
