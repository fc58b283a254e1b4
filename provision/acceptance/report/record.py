"""The acceptance record: everything a person signs and an asset system files, as one JSON-ready
document (schema: `schemas/acceptance-report-v1.json` beside this module). The HTML, JUnit and diff
renderers all read this record, so the three can never disagree.

Pure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from burnin.hardware import HardwareInventory
from burnin.schema import Finding, RunResult, Verdict, to_dict
from provision.acceptance.timeseries import Telemetry
from provision.acceptance.validation import RunVerdict, run_verdict, verdict_reason

REPORT_SCHEMA_ID = "https://inferno.example/schemas/acceptance-report-v1.json"
REPORT_SCHEMA_VERSION = 1
_ORDER = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.WARN: 2, Verdict.PASS: 3}


@dataclass(frozen=True)
class RawEvidence:
    """A raw file of the run (telemetry, tool output) and its digest, computed by the adapter."""

    path: str  # relative to the run directory
    sha256: str
    size_bytes: int


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Failures first, then inconclusive, warnings, passes; stable within each."""
    return sorted(findings, key=lambda f: _ORDER[f.verdict])


def _phases(run: RunResult, telemetry: Telemetry | None) -> list[dict[str, Any]]:
    """The telemetry's phase marks; without any, each suite's span stands for its phase."""
    phases = []
    if telemetry is not None:
        phases = [
            {"name": p.name, "start": p.start_s, "end": p.end_s, "duration_s": p.end_s - p.start_s}
            for p in telemetry.phases(run.ended_at)
        ]
    if not phases:
        phases = [
            {
                "name": s.suite,
                "start": s.started_at,
                "end": s.ended_at,
                "duration_s": s.ended_at - s.started_at,
            }
            for s in run.suites
        ]
    return phases


def _run(run: RunResult, run_kind: str, golden_run: str | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "kind": run_kind,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": (run.ended_at - run.started_at) if run.ended_at is not None else None,
        "agent_version": run.agent_version,
        "result_schema_version": run.schema_version,
        "plan": run.plan,
        "golden_run": golden_run,
    }


def _suites(run: RunResult) -> list[dict[str, Any]]:
    return [
        {
            "suite": s.suite,
            "verdict": s.verdict.value,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "duration_s": s.ended_at - s.started_at,
            "measurements": s.measurements,
            "error": s.error,
        }
        for s in run.suites
    ]


def _evidence(run: RunResult) -> list[dict[str, Any]]:
    return [
        {"suite": s.suite, **{k: v for k, v in to_dict(e).items()}} for s in run.suites for e in s.evidence
    ]


def _telemetry(run: RunResult, telemetry: Telemetry | None) -> dict[str, Any]:
    """The telemetry file's summary: sample counts and each series' min, max and mean."""
    series = []
    if telemetry is not None:
        for name in sorted(telemetry.series):
            st = telemetry.stats(name)
            if st is not None:
                series.append(
                    {"name": name, "count": st.count, "min": st.min, "max": st.max, "mean": st.mean}
                )
    return {
        "file": run.telemetry,
        "samples": telemetry.samples if telemetry else 0,
        "bad_lines": telemetry.bad_lines if telemetry else 0,
        "series": series,
    }


def build_record(
    *,
    host: str,
    profile: str | None,
    run: RunResult,
    run_kind: str,
    findings: list[Finding],
    pre_os: HardwareInventory | None,
    in_os: HardwareInventory | None,
    telemetry: Telemetry | None,
    raw: list[RawEvidence],
    generated_at: float,
    tool_version: str,
    golden_run: str | None = None,
    after: HardwareInventory | None = None,
) -> dict[str, Any]:
    verdict: RunVerdict = run_verdict(findings)
    counts = Counter(f.verdict.value for f in findings)
    return {
        "$schema": REPORT_SCHEMA_ID,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": generated_at,
        "generator": f"inferno-provision {tool_version}",
        "host": host,
        "profile": profile,
        "verdict": verdict.value,
        "reason": verdict_reason(findings),
        "counts": {v.value: counts.get(v.value, 0) for v in Verdict},
        "required_inconclusive": sum(1 for f in findings if f.verdict is Verdict.INCONCLUSIVE and f.required),
        "run": _run(run, run_kind, golden_run),
        "findings": [to_dict(f) for f in sort_findings(findings)],
        "suites": _suites(run),
        "phases": _phases(run, telemetry),
        "inventory": {
            "pre_os": pre_os.to_dict() if pre_os else None,
            "in_os": in_os.to_dict() if in_os else None,
            **({"after": after.to_dict()} if after else {}),  # the BMC read after the burn-in
        },
        "evidence": _evidence(run),
        "raw": [{"path": r.path, "sha256": r.sha256, "size_bytes": r.size_bytes} for r in raw],
        "telemetry": _telemetry(run, telemetry),
    }
