"""Validation: one pure engine turning (profile, pre-OS inventory, in-OS inventory, suite results,
telemetry, optional golden reference) into findings, and findings into the run's verdict.

A run is ACCEPTED only when no required check fails and no required check is inconclusive. One rule
for optional checks, the agent's as well: a failed optional finding warns, it never rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum

from burnin.hardware import HardwareInventory
from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.bios import check_bios_in_os
from provision.acceptance.golden import Golden
from provision.acceptance.timeseries import Telemetry
from provision.acceptance.validation.common import finding
from provision.acceptance.validation.contract import check_contract, shortfall
from provision.acceptance.validation.crosscheck import crosscheck
from provision.acceptance.validation.gpu_links import check_gpu_links
from provision.acceptance.validation.pdu import PowerLog, check_pdu
from provision.acceptance.validation.spec import (
    check_after_burnin,
    check_firmware,
    check_inventory,
    check_pre_os,
)
from provision.acceptance.validation.suites import check_suites
from provision.acceptance.validation.thermal import check_telemetry
from provision.model.hosts import Host
from provision.model.profile import Profile, Waiver


class RunVerdict(StrEnum):
    accepted = "accepted"
    rejected = "rejected"  # a required check failed
    inconclusive = "inconclusive"  # nothing required failed, but a required check has no evidence


def run_verdict(findings: Sequence[Finding]) -> RunVerdict:
    """A failed optional finding only warns (as in the agent's suite verdicts): it never rejects."""
    if any(f.verdict is Verdict.FAIL and f.required for f in findings):
        return RunVerdict.rejected
    if not findings or any(f.verdict is Verdict.INCONCLUSIVE and f.required for f in findings):
        return RunVerdict.inconclusive
    return RunVerdict.accepted


def verdict_reason(findings: Sequence[Finding]) -> str:
    """The verdict in one sentence; a run short of its profile's contract says what it lacks."""
    verdict = run_verdict(findings)
    failed = sum(1 for f in findings if f.verdict is Verdict.FAIL and f.required)
    open_ = [f for f in findings if f.verdict is Verdict.INCONCLUSIVE and f.required]
    short = shortfall(findings)
    lacking = "not an acceptance run: " + "; ".join(f"{f.component} {f.observed}" for f in short[:8])
    lacking += f"; and {len(short) - 8} more" if len(short) > 8 else ""
    if verdict is RunVerdict.accepted:
        return "Nothing failed, every required check has evidence and the profile's contract was met."
    if verdict is RunVerdict.rejected:
        text = f"{failed} required check(s) failed"
        return text + (f"; also {lacking}" if short else ".")
    if short:
        return lacking[0].upper() + lacking[1:]
    if not findings:
        return "No findings at all: nothing was judged."
    return f"Nothing failed, but {len(open_)} required check(s) have no usable evidence."


def validate(
    profile: Profile | None,
    *,
    pre_os: HardwareInventory | None = None,
    in_os: HardwareInventory | None = None,
    after: HardwareInventory | None = None,
    planned: Sequence[dict[str, object]] = (),
    suites: Sequence[SuiteResult] = (),
    telemetry: Telemetry | None = None,
    golden: Golden | None = None,
    host: Host | None = None,
    power: PowerLog | None = None,
) -> list[Finding]:
    """Every finding of a run, ids made unique. `planned`: the plan's suites ({"suite", "required"});
    `after`: the BMC's view again after the burn-in (health and PSUs under load's aftermath);
    `power`: the PDU outlet and BMC samples the controller took (power.jsonl), None without a PDU."""
    out: list[Finding] = []
    if profile is not None:
        if in_os is None:
            out.append(
                finding(
                    "inventory_collected", "os", "an in-OS inventory", None, Verdict.INCONCLUSIVE, source="os"
                )
            )
        views = [v for v in (in_os, pre_os) if v is not None]
        if in_os is not None:
            out += check_inventory(profile, in_os, host)
            out += check_bios_in_os(profile, in_os)  # threads per core, NUMA nodes, IOMMU groups
        if pre_os is not None:
            out += check_pre_os(profile, pre_os, host)
            out += check_after_burnin(profile, after)
        out += check_firmware(profile, views)
        if pre_os is not None and in_os is not None:
            out += crosscheck(pre_os, in_os)
        elif in_os is not None:
            out.append(_no_pre_os(profile))
    out += check_suites(profile, list(planned), list(suites), golden)
    out += check_contract(profile, list(planned), list(suites))
    if profile is not None:
        out += check_telemetry(profile, telemetry, list(suites))
        out += check_gpu_links(profile, list(suites))  # copies and peers vs gpu_floors (gpu_links.py)
        out += check_pdu(power)  # the controller's PDU and BMC power samples (validation/pdu.py)
        out = [_waive(f, profile.acceptance.waiver(f.check, f.component)) for f in out]
    return _unique(out)


def _waive(f: Finding, waiver: Waiver | None) -> Finding:
    """A finding the profile waives (`acceptance.not_required`) is still made and shown, optional,
    with the waiver's reason, which the reports show as "waived: <reason>"."""
    if waiver is None:
        return f
    return replace(f, required=False, waived=waiver.reason)


def _no_pre_os(profile: Profile) -> Finding:
    """The BMC/OS cross-check could not be made: say so. Required only where the profile's acceptance
    demands it (`pre_os_required`); elsewhere (a run copied by hand, `burnin --local`) it is shown,
    inconclusive and optional."""
    return finding(
        "pre_os_crosscheck",
        "bmc",
        "a pre-OS (Redfish) inventory to cross-check the OS's view against",
        "no pre-OS inventory with this run (run `provision inspect` first)",
        Verdict.INCONCLUSIVE,
        source="redfish",
        required=profile.acceptance.pre_os_required,
    )


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        n = seen.get(f.id, 0)
        seen[f.id] = n + 1
        out.append(f if n == 0 else replace(f, id=f"{f.id}#{n + 1}"))
    return out


__all__ = ["RunVerdict", "run_verdict", "validate", "verdict_reason"]
