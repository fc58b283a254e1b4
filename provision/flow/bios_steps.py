"""The BIOS settings of a host: compare with the profile's `bios:` block and, when asked, apply them
(PATCH Bios/Settings, reset the host so the BIOS takes them, read them back). Shared by
`provision bios` and the `bios` step of `provision host`.

The step is safe to run again after a partial attempt: it reads the BIOS first and PATCHes only
the attributes that still differ, so a rerun after the controller died between the PATCH and the
read-back resets the host once more at most, and never when the BIOS already runs as asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from burnin.schema import Finding, Verdict, to_dict
from provision.acceptance.bios import changes_needed, check_registry, check_settings, redacted
from provision.bmc.bios import BiosState, patch_bios, read_bios
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import BmcClient, connect
from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.flow.hostenv import StepContext
from provision.flow.waits import StepTimeout
from provision.model.bios import BiosSettings, Desired, desired_attributes, same_value, vendor_of
from provision.model.errors import BadInput, VerdictFailed
from provision.model.profile import Profile

T = TypeVar("T")


class WaitFor(Protocol):
    def __call__(
        self, what: str, poll: Callable[[], T | None], timeout_s: float, interval_s: float = 1.0
    ) -> T: ...


@dataclass
class BiosReport:
    """What one look at (or one apply of) a host's BIOS found."""

    state: BiosState | None
    vendor: str | None
    desired: Desired
    findings: list[Finding]
    changes: dict[str, Any] = field(default_factory=dict)  # what --apply PATCHed (empty: nothing)
    power: list[str] = field(default_factory=list)  # the resets done to apply them
    after: BiosState | None = None

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict is Verdict.FAIL]

    def to_dict(self) -> dict[str, Any]:
        shown = self.after or self.state
        registry = shown.registry if shown else None
        return {
            "vendor": self.vendor,
            "bios": None
            if shown is None
            else {
                **shown.to_dict(),
                "attributes": redacted(shown.attributes, registry),
                "pending": redacted(shown.pending, registry),
            },
            "before": redacted(self.state.attributes, registry) if self.after and self.state else None,
            "desired": redacted(self.desired.attributes, registry),
            "unmapped": dict(self.desired.unmapped),
            "changes": redacted(self.changes, registry),
            "power": list(self.power),
            "verdict": Verdict.worst([f.verdict for f in self.findings]).value if self.findings else "pass",
            "findings": [to_dict(f) for f in self.findings],
        }


def evaluate(bmc: BmcClient, settings: BiosSettings) -> BiosReport:
    """Current vs desired, read-only."""
    state = read_bios(bmc)
    vendor = vendor_of(state.manufacturer if state else None, settings.vendor)
    desired = desired_attributes(settings, vendor)
    findings = check_settings(desired, state.attributes if state else None, state.pending if state else None)
    if state is not None:
        findings = check_registry(desired, state.registry, state.registry_name) + findings
    return BiosReport(state, vendor.value if vendor else None, desired, findings)


def _refuse(report: BiosReport, host: str) -> None:
    """Nothing is sent that the BMC's registry refuses, or that its BIOS does not even report."""
    state = report.state
    if state is None:
        raise BadInput(f"{host}: bios --apply: the BMC exposes no Bios resource for this system")
    bad = [
        f"{f.component}: expected {f.expected}, got {f.observed}"
        for f in report.failed
        if f.check == "bios_attribute_valid"
    ]
    if state.registry is None:
        bad += [
            f"bios:{name}: expected an attribute this BIOS reports, got a name it does not"
            for name in report.desired.attributes
            if name not in state.attributes
        ]
    if report.desired.unmapped:
        bad += [f"bios:{c}: {why}" for c, why in report.desired.unmapped.items()]
    if bad:
        raise BadInput(f"{host}: bios --apply refused, nothing was sent: " + "; ".join(bad))


def apply(
    bmc: BmcClient,
    settings: BiosSettings,
    *,
    host: str,
    power_timeout_s: float,
    readback_timeout_s: float,
    wait: WaitFor,
    poll_s: float = 5.0,
    restore_power: bool = True,
) -> BiosReport:
    """PATCH the attributes that differ, reset the host, read them back. The findings of the
    returned report are those of the read-back: any difference fails."""
    report = evaluate(bmc, settings)
    _refuse(report, host)
    if report.state is None:  # _refuse raised already; said again for the type checker
        raise BadInput(f"{host}: bios --apply: the BMC exposes no Bios resource for this system")
    changes = changes_needed(report.desired, report.state.attributes)
    if not changes:
        return report
    patch_bios(bmc, report.state, changes)
    previous = bmc.power_state()
    cycled = set_power(bmc, PowerAction.cycle, power_timeout_s)
    power = [*cycled.steps]
    last: list[BiosState | None] = [None]

    def applied() -> BiosState | None:
        now = read_bios(bmc, registry=False)
        last[0] = now
        if now is not None and all(same_value(v, now.attributes.get(k)) for k, v in changes.items()):
            return now
        return None

    after: BiosState | None
    try:
        after = wait("the BIOS to report the new settings", applied, readback_timeout_s, poll_s)
    except StepTimeout:
        after = last[0]
    if restore_power and previous == "Off":
        power += set_power(bmc, PowerAction.force_off, power_timeout_s).steps
    if after is not None:
        after = replace(after, registry=report.state.registry, registry_name=report.state.registry_name)
    findings = check_settings(
        report.desired, after.attributes if after else None, after.pending if after else None
    )
    return BiosReport(report.state, report.vendor, report.desired, findings, changes, power, after)


class BiosSteps:
    """The `bios` step of `provision host`: before the install, so the OS is installed and burnt
    in on the BIOS settings the node class runs with."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def steps(self) -> dict[StepName, StepFn]:
        return {StepName.bios: self.bios}

    def bios(self, call: StepCall) -> StepResult:
        env = self.ctx.env
        profile: Profile = env.profile
        if profile.bios is None:
            return StepResult(message="the profile has no bios block: nothing to set", skipped=True)
        with connect(env.host.bmc) as bmc:
            report = apply(
                bmc,
                profile.bios,
                host=self.ctx.name,
                power_timeout_s=env.timeouts.power_s,
                readback_timeout_s=env.timeouts.power_s,
                wait=call.waiter.wait_for,
                poll_s=env.timeouts.poll_s,
                restore_power=True,  # an Off host stays Off: nothing boots before its run is open
            )
        doc = "bios.json"
        self.ctx.store.put_document(self.ctx.run.id, doc, report.to_dict())
        for name, value in redacted(report.changes).items():
            self.ctx.note(call, f"BIOS {name} set to {value}")
        failed = report.failed
        if failed:
            shown = "; ".join(f"{f.component}: expected {f.expected}, got {f.observed}" for f in failed[:5])
            raise VerdictFailed(f"{self.ctx.name}: BIOS settings differ after apply: {shown}")
        open_ = [f for f in report.findings if f.verdict is Verdict.INCONCLUSIVE]
        message = (
            f"{len(report.changes)} BIOS attribute(s) set and read back"
            if report.changes
            else "the BIOS already runs with the profile's settings"
        )
        if open_:
            message += f"; {len(open_)} inconclusive"
        return StepResult(message=message, evidence=(doc,), facts={"bios_changed": sorted(report.changes)})


__all__ = ["BiosReport", "BiosSteps", "WaitFor", "apply", "evaluate"]
