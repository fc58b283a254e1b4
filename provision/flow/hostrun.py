"""One host's run of the workflow: the lock, which run to resume, the safety gates, the journal.

- The host lock is held from before the run is chosen until it is closed.
- The latest provision/reinstall run that did not succeed is resumed (a crash, a Ctrl-C, a failure);
  otherwise a new run starts. A run ends `succeeded` once every step is complete; one that stops
  short ends `failed` or `interrupted` but keeps its install token, so an install it started may
  still call back, and a rerun reopens it (`running` again).
- A new run on an accepted or handed-off host, or a `--restart-from` that would repeat a completed
  destructive step, needs `--yes`: both wipe disks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from provision.flow.engine import (
    Cancel,
    Engine,
    Progress,
    StepFn,
    StepName,
    StepRecord,
    Summary,
    facts_of,
    plan,
    repeats_destructive,
)
from provision.model.errors import BadInput, ProvisionError
from provision.store.lifecycle import HostState, Run, RunStatus
from provision.store.state import StateStore

RUN_KINDS = ("provision", "reinstall")
PROTECTED = (HostState.accepted, HostState.handed_off)


@dataclass(frozen=True)
class RunRequest:
    host: str
    kind: str = "provision"  # or "reinstall"
    yes: bool = False
    restart_from: StepName | None = None
    options: dict[str, Any] = field(default_factory=dict)  # recorded with the run's start event
    # Take-over (provision.flow.takeover): only continue an unfinished run, never start one; checked
    # under the lock, so a host another controller finished meanwhile is not installed again.
    resume_only: bool = False


StepsFactory = Callable[[Run, dict[str, Any]], dict[StepName, StepFn]]


class NothingToResume(ProvisionError):
    """A take-over found the host's run finished by the time it held the host: nothing to do."""

    exit_code = 0


def journal_records(store: StateStore, run_id: str) -> list[StepRecord]:
    return [
        StepRecord(r.step, str(r.outcome) if r.outcome else None, r.evidence) for r in store.steps(run_id)
    ]


def resumable_run(store: StateStore, host: str) -> Run | None:
    """The run a rerun continues: the latest provision/reinstall run that has not succeeded."""
    runs = [r for r in store.list_runs(host) if r.kind in RUN_KINDS]
    if runs and runs[-1].status is not RunStatus.succeeded:
        return runs[-1]
    return None


def _confirm_new_run(store: StateStore, req: RunRequest) -> None:
    state = store.get_host_state(req.host)
    if state in PROTECTED and not req.yes:
        raise BadInput(
            f"{req.host} is {state}: a new {req.kind} run reinstalls its OS (wiping the boot disks) and "
            "runs destructive disk tests; pass --yes to confirm"
        )


def run_host(
    store: StateStore,
    req: RunRequest,
    progress: Progress,
    make_steps: StepsFactory,
    cancel: Cancel | None = None,
) -> Summary:
    """Run (or resume) the workflow for one host under its lock; return the engine's summary."""
    with store.host_lock(req.host):
        run = resumable_run(store, req.host)
        resumed = run is not None
        if run is None and req.resume_only:
            raise NothingToResume(f"{req.host}: no unfinished run to take over (it finished meanwhile)")
        if run is None:
            _confirm_new_run(store, req)
            run = store.create_run(req.host, req.kind)
        elif run.kind != req.kind:
            raise BadInput(
                f"{req.host}: a {run.kind} run ({run.id}) is unfinished; resume it with "
                f"'provision {'host' if run.kind == 'provision' else 'reinstall'} {req.host}' first"
            )
        records = journal_records(store, run.id)
        planned = plan(records, req.restart_from)
        again = repeats_destructive(planned, records)
        if again and not req.yes:
            raise BadInput(
                f"{req.host}: --restart-from {req.restart_from} repeats {', '.join(again)}, which completed "
                f"in run {run.id} (a reinstall / destructive disk test); pass --yes to confirm"
            )
        facts = facts_of(records)
        todo = [p.step.name.value for p in planned if p.run]
        if run.status is not RunStatus.running:
            run = store.reopen_run(run.id)
        store.add_event(
            req.host,
            "flow_resumed" if resumed else "flow_started",
            {"kind": req.kind, "steps": todo, "restart_from": req.restart_from, **req.options},
            run_id=run.id,
        )
        try:
            engine = Engine(store, progress, make_steps(run, facts), cancel=cancel)
            summary = engine.run(req.host, run.id, planned, facts)
        except BaseException as exc:
            # A bug in a step or a second Ctrl-C: the run still ends, never left `running`; a store
            # that fails here too must not hide the original error.
            with suppress(ProvisionError):
                _stop(store, run, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise
        if summary.outcome == "ok":
            store.finish_run(run.id, RunStatus.succeeded)
        else:
            store.add_event(
                req.host,
                "flow_stopped",
                {"outcome": summary.outcome, "step": summary.failed_step, "message": summary.message},
                run_id=run.id,
            )
            _stop(store, run, summary.outcome)
        return summary


def _stop(store: StateStore, run: Run, outcome: str) -> None:
    """Mark a run that stopped short `failed` or `interrupted`, so `status` tells the truth. It stays
    resumable (a rerun reopens it), and keeps its install token: an install under way may call back."""
    status = RunStatus.interrupted if outcome == "interrupted" else RunStatus.failed
    store.finish_run(run.id, status, keep_tokens=True)
