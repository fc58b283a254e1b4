"""One host's run: which run a rerun continues, and the --yes gates, against the real state store."""

from __future__ import annotations

import io

import pytest

from provision.flow.engine import STEPS, StepCall, StepFn, StepName, StepResult
from provision.flow.hostrun import RunRequest, run_host
from provision.flow.logprogress import PlainProgress
from provision.model.errors import BadInput
from provision.store.lifecycle import HostState, Run, RunStatus
from provision.store.state import StateStore

HOST = "inferno-host-exper-1"


def steps(calls: list[str], fail_at: str | None = None) -> dict[StepName, StepFn]:
    def make(name: str) -> StepFn:
        def run(call: StepCall) -> StepResult:
            calls.append(name)
            if name == fail_at:
                raise BadInput(f"{name}: refused (test)")
            return StepResult(facts={"verdict": "accepted"} if name == "validate" else {})

        return run

    return {s.name: make(s.name.value) for s in STEPS}


def go(store: StateStore, req: RunRequest, calls: list[str], fail_at: str | None = None) -> str:
    def factory(run: Run, facts: dict[str, object]) -> dict[StepName, StepFn]:
        return steps(calls, fail_at)

    return run_host(store, req, PlainProgress(io.StringIO()), factory).outcome


def test_resume_continues_the_unfinished_run_and_a_finished_one_starts_anew(store: StateStore) -> None:
    calls: list[str] = []
    assert go(store, RunRequest(HOST), calls, fail_at="collect") == "failed"
    first = store.latest_run(HOST)
    assert first is not None and first.status is RunStatus.failed  # ended, yet the rerun resumes it
    calls.clear()
    assert go(store, RunRequest(HOST), calls) == "ok"
    assert calls == ["collect", "validate", "report", "handoff"]
    assert [r.id for r in store.list_runs(HOST)] == [first.id]
    assert store.get_run(first.id).status is RunStatus.succeeded
    kinds = [e.kind for e in store.events(run_id=first.id)]
    assert kinds == ["flow_started", "flow_stopped", "flow_resumed"]


def test_restart_from_that_repeats_a_completed_install_needs_yes(store: StateStore) -> None:
    calls: list[str] = []
    go(store, RunRequest(HOST), calls, fail_at="collect")
    run = store.latest_run(HOST)
    assert run is not None
    with pytest.raises(BadInput) as exc:
        go(store, RunRequest(HOST, restart_from=StepName.open_run), calls)
    assert str(exc.value) == (
        f"{HOST}: --restart-from open_run repeats pxe_boot, start_burnin, which completed in run {run.id} "
        "(a reinstall / destructive disk test); pass --yes to confirm"
    )
    calls.clear()
    assert go(store, RunRequest(HOST, yes=True, restart_from=StepName.open_run), calls) == "ok"
    assert calls[0] == "open_run"


def test_an_unfinished_run_of_the_other_kind_is_resumed_first(store: StateStore) -> None:
    go(store, RunRequest(HOST, kind="reinstall"), [], fail_at="wait_ssh")
    run = store.latest_run(HOST)
    assert run is not None
    with pytest.raises(BadInput) as exc:
        go(store, RunRequest(HOST), [])
    assert str(exc.value) == (
        f"{HOST}: a reinstall run ({run.id}) is unfinished; resume it with 'provision reinstall {HOST}' first"
    )


def test_a_new_run_on_a_handed_off_host_needs_yes(store: StateStore) -> None:
    store.set_host_state(HOST, HostState.handed_off, reason="test")
    with pytest.raises(BadInput) as exc:
        go(store, RunRequest(HOST, kind="reinstall"), [])
    assert str(exc.value) == (
        f"{HOST} is handed-off: a new reinstall run reinstalls its OS (wiping the boot disks) and runs "
        "destructive disk tests; pass --yes to confirm"
    )
    assert store.list_runs(HOST) == []
    assert go(store, RunRequest(HOST, kind="reinstall", yes=True), []) == "ok"
