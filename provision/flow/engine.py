"""The engine of `provision host`: a declared, ordered list of named steps, each journaled.

Pure apart from the journal and progress it is handed. The rules that make a run resumable live
here, in one place:

- A step is *done* when the journal holds a `done` outcome for it in this run. A rerun skips done
  steps and continues from the first step that is not done (unfinished after a SIGKILL, failed,
  or interrupted by Ctrl-C).
- A step that was started but never finished is run again; each step's own code is written so that
  running it again after a partial attempt is safe (pxe_boot, for one, checks for the install's
  `started` callback before it would power-cycle a host that is already installing).
- `--restart-from STEP` runs STEP and everything after it again. When that would repeat a completed
  destructive step (the install, the destructive disk tests), the caller must confirm (`--yes`).
- Every wait goes through `provision.flow.waits.Waiter.wait_for` (a timeout that names what it waits
  for; an immediate stop when the run is cancelled).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from provision.flow.waits import Cancel, FlowInterrupted, Progress, StepTimeout, Waiter
from provision.model.errors import BadInput, ProvisionError


class StepName(StrEnum):
    """Stable names: they appear in the journal, in reports and in `--restart-from`."""

    inspect = "inspect"
    firmware = "firmware"
    bios = "bios"
    render_kickstart = "render_kickstart"
    open_run = "open_run"
    pxe_boot = "pxe_boot"
    wait_install = "wait_install"
    boot_disk = "boot_disk"
    wait_ssh = "wait_ssh"
    start_burnin = "start_burnin"
    follow_burnin = "follow_burnin"
    collect = "collect"
    validate = "validate"
    report = "report"
    handoff = "handoff"
    # The steps of `provision handoff` (provision.flow.handoff_steps.HANDOFF_STEPS), journaled in a
    # run of their own; never part of STEPS.
    rhcos_boot = "rhcos_boot"
    rhcos_install = "rhcos_install"
    metal3_register = "metal3_register"
    join_node = "join_node"
    label_node = "label_node"


class Outcome(StrEnum):
    """The journal's step outcomes (the same values as provision.store.lifecycle.StepOutcome).

    An interrupted step is journaled as failed with a message saying so; the run's status says
    interrupted.
    """

    ok = "ok"
    failed = "failed"
    skipped = "skipped"


COMPLETE = (Outcome.ok.value, Outcome.skipped.value)


@dataclass(frozen=True)
class StepSpec:
    name: StepName
    does: str  # what the step does, for a person
    destructive: bool = False  # wipes the boot disks or writes to scratch drives
    # The later step whose success means the destructive work really completed (an install that
    # failed half-way has nothing left to protect; one that finished has a host on it).
    completed_by: StepName | None = None


STEPS: tuple[StepSpec, ...] = (
    StepSpec(StepName.inspect, "read the hardware through the BMC and gate on pre-OS findings"),
    StepSpec(StepName.firmware, "update parts below the profile's firmware baseline, read versions back"),
    StepSpec(StepName.bios, "set the profile's BIOS settings, reset the host and read them back"),
    StepSpec(StepName.render_kickstart, "render the kickstart and iPXE script for this host"),
    StepSpec(StepName.open_run, "open a provisioning run on the boot server (per-run token)"),
    StepSpec(
        StepName.pxe_boot,
        "set a one-time PXE boot and power-cycle the host",
        destructive=True,
        completed_by=StepName.wait_install,
    ),
    StepSpec(StepName.wait_install, "wait for the installer's started and finished callbacks"),
    StepSpec(StepName.boot_disk, "make sure the next boot is from disk"),
    StepSpec(StepName.wait_ssh, "wait for SSH with the host key pinned from the callback"),
    StepSpec(
        StepName.start_burnin,
        "ship the burn-in agent and start it detached",
        destructive=True,
        completed_by=StepName.follow_burnin,
    ),
    StepSpec(StepName.follow_burnin, "follow the burn-in until it ends"),
    StepSpec(StepName.collect, "collect the agent's results and evidence"),
    StepSpec(StepName.validate, "validate inventories and results against the profile"),
    StepSpec(StepName.report, "write the JSON, HTML and JUnit reports"),
    StepSpec(StepName.handoff, "hand the accepted host to OpenShift (manifests)"),
)
STEP_NAMES: tuple[str, ...] = tuple(s.name.value for s in STEPS)


def parse_step(name: str, steps: Sequence[StepSpec] = STEPS) -> StepName:
    names = tuple(s.name.value for s in steps)
    if name not in names:
        raise BadInput(f"--restart-from: expected one of {', '.join(names)}, got {name!r}")
    return StepName(name)


@dataclass(frozen=True)
class StepResult:
    """What a step hands back: a message, evidence refs (document names) and facts for later steps.

    Both go into the journal row of the step (never secrets), so a resumed run has what the finished
    steps learnt without running them again.
    """

    message: str = ""
    evidence: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # nothing to do (e.g. handoff of a rejected host): journaled as skipped


class Journal(Protocol):
    """The part of the state store the engine needs (provision.store.state.StateStore satisfies it)."""

    def step_started(self, run_id: str, step: str) -> None: ...

    def step_finished(
        self,
        run_id: str,
        step: str,
        outcome: Any,
        evidence: dict[str, Any] | None = None,
        message: str = "",
    ) -> None: ...


StepFn = Callable[["StepCall"], StepResult]


@dataclass
class StepCall:
    """What one step's code is handed: the facts learnt so far, a waiter, and whether it ran before."""

    host: str
    run_id: str
    step: StepName
    facts: dict[str, Any]
    waiter: Waiter
    attempt: int  # 1 the first time this step starts in this run; more after a crash or a failure
    # The previous attempt of this very step did not complete (the controller died, was stopped,
    # or the step failed): its side effects may have happened. False on a first run and on
    # --restart-from.
    after_cut: bool = False


@dataclass(frozen=True)
class StepRecord:
    """One journal row, as the engine reads it back."""

    step: str
    outcome: str | None  # None: started, never finished (the controller died during it)
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True)
class Planned:
    step: StepSpec
    run: bool
    why: str  # "already done", "restart requested", "not done yet", "unfinished (...)", ...
    attempts: int  # how many times the journal shows it started in this run
    after_cut: bool = False  # its last attempt did not complete (died, interrupted, failed)


def plan(
    records: Sequence[StepRecord], restart_from: StepName | None = None, steps: Sequence[StepSpec] = STEPS
) -> list[Planned]:
    """Which steps this invocation runs, from the journal of the run so far. Pure."""
    last: dict[str, str | None] = {}
    starts: dict[str, int] = {}
    for r in records:
        last[r.step] = r.outcome
        starts[r.step] = starts.get(r.step, 0) + 1
    restart_at = next((i for i, s in enumerate(steps) if s.name == restart_from), None)
    out: list[Planned] = []
    resuming = False
    for i, spec in enumerate(steps):
        name = spec.name.value
        n = starts.get(name, 0)
        if restart_at is not None and i >= restart_at:
            out.append(Planned(spec, True, "restart requested", n))
            continue
        outcome = last.get(name, "")
        if outcome in COMPLETE and not resuming:
            out.append(Planned(spec, False, "already done", n))
            continue
        # Once one step must run, every later one runs too: its inputs may have changed.
        resuming = True
        if name not in last:
            why = "not done yet"
        elif outcome is None:
            why = "unfinished (the controller stopped during it)"
        elif outcome in COMPLETE:
            why = "an earlier step runs again"
        else:
            why = f"last attempt {outcome}"
        out.append(Planned(spec, True, why, n, after_cut=name in last and outcome not in COMPLETE))
    return out


def repeats_destructive(planned: Iterable[Planned], records: Sequence[StepRecord]) -> list[str]:
    """Destructive steps this plan would run again although their work completed in this run."""
    done = {r.step for r in records if r.outcome == Outcome.ok}
    return [
        p.step.name.value
        for p in planned
        if p.run and p.step.destructive and (p.step.completed_by or p.step.name).value in done
    ]


def facts_of(records: Sequence[StepRecord]) -> dict[str, Any]:
    """The facts the completed steps learnt, in step order (a later attempt overrides an earlier)."""
    facts: dict[str, Any] = {}
    for r in records:
        if r.outcome in COMPLETE and r.evidence:
            facts.update(r.evidence.get("facts", {}))
    return facts


@dataclass(frozen=True)
class Summary:
    host: str
    run_id: str
    ran: tuple[str, ...]
    skipped: tuple[str, ...]
    outcome: str  # "ok", "failed", "interrupted"
    failed_step: str | None
    message: str
    facts: dict[str, Any]
    exit_code: int = 0  # the CLI's code for what stopped the run (3 external, 1 verdict, 130 interrupted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "failed_step": self.failed_step,
            "message": self.message,
            "ran": list(self.ran),
            "skipped": list(self.skipped),
            "verdict": self.facts.get("verdict"),
            "exit_code": self.exit_code,
        }


class Engine:
    """Runs the planned steps of one run, journaling each: started, then ok/skipped/failed."""

    def __init__(
        self,
        journal: Journal,
        progress: Progress,
        steps: dict[StepName, StepFn],
        cancel: Cancel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.progress = progress
        self.steps = steps
        self.cancel = cancel or Cancel()
        self.clock = clock

    def run(self, host: str, run_id: str, planned: Sequence[Planned], facts: dict[str, Any]) -> Summary:
        ran: list[str] = []
        skipped: list[str] = []

        def summary(outcome: str, step: str | None, message: str, code: int = 0) -> Summary:
            return Summary(host, run_id, tuple(ran), tuple(skipped), outcome, step, message, facts, code)

        for p in planned:
            name = p.step.name.value
            if not p.run:
                skipped.append(name)
                self.progress.step_skipped(host, name, p.why)
                continue
            fn = self.steps.get(p.step.name)
            if fn is None:
                raise BadInput(f"workflow: no code for step {name!r}")
            if self.cancel.is_set:
                return summary("interrupted", name, f"interrupted ({self.cancel.reason}) before {name}", 130)
            self.journal.step_started(run_id, name)
            self.progress.step_started(host, name, p.step.does)
            started = self.clock()
            call = StepCall(
                host=host,
                run_id=run_id,
                step=p.step.name,
                facts=facts,
                waiter=Waiter(host, name, self.progress, self.cancel, clock=self.clock),
                attempt=p.attempts + 1,
                after_cut=p.after_cut,
            )
            try:
                result = fn(call)
            except FlowInterrupted as exc:
                self._finish(host, run_id, name, Outcome.failed, started, str(exc), "interrupted")
                return summary("interrupted", name, str(exc), exc.exit_code)
            except KeyboardInterrupt:
                msg = "interrupted (Ctrl-C)"
                self._finish(host, run_id, name, Outcome.failed, started, msg, "interrupted")
                return summary("interrupted", name, msg, FlowInterrupted.exit_code)
            except ProvisionError as exc:
                self._finish(host, run_id, name, Outcome.failed, started, str(exc))
                return summary("failed", name, str(exc), exc.exit_code)
            except Exception as exc:
                # A bug, not a failure of the host: journal it against the step, then let it surface.
                self._finish(host, run_id, name, Outcome.failed, started, f"{type(exc).__name__}: {exc}")
                raise
            facts.update(result.facts)
            outcome = Outcome.skipped if result.skipped else Outcome.ok
            evidence = {"refs": list(result.evidence), "facts": result.facts}
            self._finish(host, run_id, name, outcome, started, result.message, evidence=evidence)
            (skipped if result.skipped else ran).append(name)
        return summary("ok", None, "")

    def _finish(
        self,
        host: str,
        run_id: str,
        name: str,
        outcome: Outcome,
        started: float,
        message: str,
        shown: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self.journal.step_finished(run_id, name, outcome.value, evidence=evidence, message=message)
        self.progress.step_finished(host, name, shown or outcome.value, self.clock() - started, message)


__all__ = [
    "STEPS",
    "STEP_NAMES",
    "Cancel",
    "Engine",
    "FlowInterrupted",
    "Progress",
    "StepTimeout",
    "Waiter",
]
