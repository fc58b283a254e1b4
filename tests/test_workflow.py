"""The workflow engine against the real state store: journal, resume plan, restart, waits, Ctrl-C."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from provision.cli.progress import JsonProgress
from provision.flow.engine import (
    STEP_NAMES,
    STEPS,
    Cancel,
    Engine,
    FlowInterrupted,
    StepCall,
    StepName,
    StepRecord,
    StepResult,
    StepTimeout,
    Waiter,
    facts_of,
    parse_step,
    plan,
    repeats_destructive,
)
from provision.flow.logprogress import PlainProgress
from provision.model.errors import BadInput, BmcError
from provision.store.state import StateStore, StepOutcome

HOST = "inferno-host-compute-1"


def records(store: StateStore, run_id: str) -> list[StepRecord]:
    rows = store.steps(run_id)
    return [StepRecord(r.step, str(r.outcome) if r.outcome else None, r.evidence) for r in rows]


class Recorder:
    """Step code that counts its calls and can be told to fail, interrupt or wait at one step."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_at: str | None = None
        self.interrupt_at: str | None = None

    def fn(self, name: StepName) -> Callable[[StepCall], StepResult]:
        def run(call: StepCall) -> StepResult:
            self.calls.append(name.value)
            if name.value == self.fail_at:
                raise BmcError(f"https://bmc/redfish/v1/Systems/1: {name.value} refused (test)")
            if name.value == self.interrupt_at:
                raise KeyboardInterrupt
            return StepResult(message=f"{name.value} done", facts={f"{name.value}_attempt": call.attempt})

        return run

    def steps(self) -> dict[StepName, Callable[[StepCall], StepResult]]:
        return {s.name: self.fn(s.name) for s in STEPS}


def run_once(
    store: StateStore, run_id: str, rec: Recorder, restart: StepName | None = None
) -> tuple[str, str]:
    out = io.StringIO()
    recs = records(store, run_id)
    engine = Engine(store, JsonProgress(out), rec.steps())
    summary = engine.run(HOST, run_id, plan(recs, restart), facts_of(recs))
    return summary.outcome, out.getvalue()


def test_step_names_are_stable_snake_case_in_the_design_order() -> None:
    assert STEP_NAMES == (
        "inspect",
        "firmware",
        "bios",
        "render_kickstart",
        "open_run",
        "pxe_boot",
        "wait_install",
        "boot_disk",
        "wait_ssh",
        "start_burnin",
        "follow_burnin",
        "collect",
        "validate",
        "report",
        "handoff",
    )
    assert {s.name.value for s in STEPS if s.destructive} == {"pxe_boot", "start_burnin"}


def test_resume_after_a_failed_step_continues_there_and_repeats_nothing_done(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    rec = Recorder()
    rec.fail_at = "wait_install"
    outcome, _ = run_once(store, run.id, rec)
    assert outcome == "failed"
    assert rec.calls == list(STEP_NAMES[: STEP_NAMES.index("wait_install") + 1])
    failed = store.steps(run.id)[-1]
    assert (failed.step, str(failed.outcome)) == ("wait_install", "failed")
    assert "refused (test)" in failed.message

    rec2 = Recorder()
    outcome, lines = run_once(store, run.id, rec2)
    assert outcome == "ok"
    assert rec2.calls == list(
        STEP_NAMES[STEP_NAMES.index("wait_install") :]
    )  # from the failed step on, nothing before it
    skipped = [json.loads(x)["step"] for x in lines.splitlines() if json.loads(x)["event"] == "step_skipped"]
    assert skipped == list(STEP_NAMES[: STEP_NAMES.index("wait_install")])
    assert store.completed_steps(run.id) == set(STEP_NAMES)
    # the second attempt of wait_install knows it is one
    assert facts_of(records(store, run.id))["wait_install_attempt"] == 2


def test_resume_reruns_a_step_the_controller_died_in(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    pxe = STEP_NAMES.index("pxe_boot")
    for name in STEP_NAMES[:pxe]:
        store.step_started(run.id, name)
        store.step_finished(run.id, name, StepOutcome.ok, evidence={"refs": [], "facts": {name: True}})
    store.step_started(run.id, "pxe_boot")  # SIGKILL here: no finish row
    planned = plan(records(store, run.id))
    assert [p.step.name.value for p in planned if p.run] == list(STEP_NAMES[pxe:])
    assert planned[pxe].why.startswith("unfinished")
    assert planned[pxe].attempts == 1
    assert facts_of(records(store, run.id)) == dict.fromkeys(STEP_NAMES[:pxe], True)


def test_resume_after_ctrl_c_journals_the_interruption_and_continues_from_it(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    rec = Recorder()
    rec.interrupt_at = "follow_burnin"
    outcome, lines = run_once(store, run.id, rec)
    assert outcome == "interrupted"
    last = store.steps(run.id)[-1]
    assert (last.step, str(last.outcome), last.message) == ("follow_burnin", "failed", "interrupted (Ctrl-C)")
    finished = [json.loads(x) for x in lines.splitlines() if json.loads(x)["event"] == "step_finished"]
    assert finished[-1]["outcome"] == "interrupted"

    rec2 = Recorder()
    assert run_once(store, run.id, rec2)[0] == "ok"
    assert rec2.calls == ["follow_burnin", "collect", "validate", "report", "handoff"]
    assert "start_burnin" not in rec2.calls  # the destructive start is never repeated by a resume


def test_restart_from_reruns_later_steps_and_flags_repeated_destructive_ones(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    assert run_once(store, run.id, Recorder())[0] == "ok"
    recs = records(store, run.id)
    assert [p for p in plan(recs) if p.run] == []  # a finished run has nothing left to do

    planned = plan(recs, StepName.wait_ssh)
    assert [p.step.name.value for p in planned if p.run] == list(STEP_NAMES[STEP_NAMES.index("wait_ssh") :])
    assert repeats_destructive(planned, recs) == ["start_burnin"]
    assert repeats_destructive(plan(recs, StepName.validate), recs) == []
    assert repeats_destructive(plan(recs, StepName.inspect), recs) == ["pxe_boot", "start_burnin"]

    rec = Recorder()
    assert run_once(store, run.id, rec, StepName.validate)[0] == "ok"
    assert rec.calls == ["validate", "report", "handoff"]


def test_restart_after_a_failed_install_repeats_nothing_that_completed(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    rec = Recorder()
    rec.fail_at = "wait_install"
    run_once(store, run.id, rec)
    recs = records(store, run.id)
    # pxe_boot ran, but the install it started failed: nothing installed is lost by going again
    assert repeats_destructive(plan(recs, StepName.pxe_boot), recs) == []


def test_restart_from_an_unknown_step_names_the_choices() -> None:
    with pytest.raises(BadInput) as exc:
        parse_step("pxe")
    assert str(exc.value) == (
        "--restart-from: expected one of inspect, firmware, bios, render_kickstart, open_run, pxe_boot, "
        "wait_install, boot_disk, wait_ssh, start_burnin, follow_burnin, collect, validate, report, handoff, "
        "got 'pxe'"
    )


def test_a_skipped_step_counts_as_complete(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    steps = Recorder().steps()
    steps[StepName.handoff] = lambda call: StepResult(message="host rejected: no handoff", skipped=True)
    engine = Engine(store, PlainProgress(io.StringIO()), steps)
    summary = engine.run(HOST, run.id, plan([]), {})
    assert summary.skipped == ("handoff",)
    assert str(store.steps(run.id)[-1].outcome) == "skipped"
    assert [p for p in plan(records(store, run.id)) if p.run] == []


class FakeClock:
    """Time that moves only when the waiter sleeps: the timeout logic without real waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ClockCancel(Cancel):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def sleep(self, seconds: float) -> None:
        self.check()
        self.clock.now += seconds


def test_a_stuck_wait_times_out_saying_what_it_waited_for() -> None:
    clock = FakeClock()
    out = io.StringIO()
    cancel = ClockCancel(clock)
    waiter = Waiter(HOST, "wait_install", PlainProgress(out), cancel, clock=clock, report_every_s=60)
    what = "the installer's 'finished' callback"
    with pytest.raises(StepTimeout) as exc:
        waiter.wait_for(what, lambda: None, 300, interval_s=5, status=lambda: "started at 12:00")
    assert str(exc.value) == (
        f"{HOST}: wait_install: timed out after 300 s waiting for the installer's 'finished' callback; "
        "last seen: started at 12:00"
    )
    progress = out.getvalue()
    assert "wait_install: waiting for the installer's 'finished' callback (0 s of 300 s)" in progress
    assert "(240 s of 300 s)" in progress


def test_a_wait_returns_what_the_poll_found() -> None:
    clock = FakeClock()
    polls = iter([None, None, {"kind": "finished"}])
    waiter = Waiter(HOST, "wait_install", PlainProgress(io.StringIO()), ClockCancel(clock), clock=clock)
    assert waiter.wait_for("x", lambda: next(polls), 60, interval_s=1) == {"kind": "finished"}
    assert clock.now == 2


def test_a_cancelled_wait_stops_at_once_and_the_journal_says_interrupted(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    cancel = Cancel()
    steps = Recorder().steps()

    def wait_forever(call: StepCall) -> StepResult:
        cancel.set("SIGTERM")
        call.waiter.wait_for("a callback that never comes", lambda: None, 3600)
        return StepResult()

    steps[StepName.inspect] = wait_forever
    engine = Engine(store, PlainProgress(io.StringIO()), steps, cancel=cancel)
    summary = engine.run(HOST, run.id, plan([]), {})
    assert (summary.outcome, summary.failed_step) == ("interrupted", "inspect")
    row = store.steps(run.id)[-1]
    assert (row.step, str(row.outcome), row.message) == ("inspect", "failed", "interrupted (SIGTERM)")
    with pytest.raises(FlowInterrupted):
        cancel.check()
