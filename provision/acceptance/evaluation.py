"""Acceptance of one run: validate its files against the host's profile and build the record every
report renders. Pure apart from the clock and version the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from burnin.schema import Finding
from provision.acceptance.eventlog import event_log_findings
from provision.acceptance.golden import Golden
from provision.acceptance.report.record import build_record
from provision.acceptance.runfiles import RunFiles
from provision.acceptance.validation import RunVerdict, run_verdict, validate
from provision.model.hosts import Host
from provision.model.profile import Profile


@dataclass(frozen=True)
class Acceptance:
    findings: list[Finding]
    verdict: RunVerdict
    record: dict[str, Any]


def evaluate(
    files: RunFiles,
    *,
    host_name: str,
    profile: Profile | None,
    host: Host | None,
    golden: Golden | None,
    kind: str,
    generated_at: float,
    tool_version: str,
) -> Acceptance:
    findings = validate(
        profile,
        pre_os=files.pre_os,
        in_os=files.in_os,
        after=files.after,
        planned=list(files.run.plan.get("suites", [])),
        suites=files.run.suites,
        telemetry=files.telemetry,
        golden=golden,
        host=host,
        power=files.power,
    ) + event_log_findings(files.event_log)
    record = build_record(
        host=host_name,
        profile=profile.name if profile else None,
        run=files.run,
        run_kind=kind,
        findings=findings,
        pre_os=files.pre_os,
        in_os=files.in_os,
        telemetry=files.telemetry,
        raw=files.raw,
        generated_at=generated_at,
        tool_version=tool_version,
        golden_run=golden.run_id if golden else None,
        after=files.after,
    )
    return Acceptance(findings, run_verdict(findings), record)
