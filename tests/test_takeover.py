"""What a take-over claims (provision.flow.takeover) and `provision controller --once` on a SQLite
store, with no servers: the scope flags, an unfinished run nobody holds (claimable), one a live
process holds (held, with who), a finished one (left alone), and the flags' bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from provision.cli.main import main
from provision.flow.engine import StepFn, StepName
from provision.flow.hostrun import NothingToResume, RunRequest, run_host
from provision.flow.logprogress import PlainProgress
from provision.flow.takeover import Candidate, scan, scope_hosts
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.store.state import RunStatus, StateStore, StepOutcome
from tests.conftest import PROFILES

MASTER, COMPUTE, EXPER = "inferno-host-master", "inferno-host-compute-1", "inferno-host-exper-1"


def _names(**scope: object) -> list[str]:
    return [h.name for h in scope_hosts(load_catalog(PROFILES), **scope)]  # type: ignore[arg-type]


def test_the_scope_flags_add_up_within_one_flag_and_narrow_across_flags() -> None:
    assert _names() == [COMPUTE, EXPER, MASTER]
    assert _names(racks=["circle-1-limbo", "circle-6-heresy"]) == [EXPER, MASTER]
    assert _names(circles=[2]) == [COMPUTE]
    assert _names(pdus=["inferno-pdu-circle6-1"]) == [EXPER]
    assert _names(racks=["circle-1-limbo"], circles=[2]) == []


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (
            {"racks": ["circle-9-x"]},
            "--rack: expected one of circle-1-limbo, circle-2-lust, circle-6-heresy, got 'circle-9-x'",
        ),
        ({"circles": [9]}, "--circle: expected one of 1, 2, 6, got '9'"),
        (
            {"pdus": ["nope"]},
            "--pdu: expected one of inferno-pdu-circle1-1, inferno-pdu-circle2-1, inferno-pdu-circle6-1, "
            "got 'nope'",
        ),
    ],
)
def test_an_unknown_scope_value_is_one_line_naming_the_choices(
    scope: dict[str, list[object]], message: str
) -> None:
    with pytest.raises(BadInput) as exc:
        _names(**scope)
    assert str(exc.value) == message


def test_a_scan_claims_unfinished_free_hosts_only(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state") as store:
        dead = store.create_run(MASTER, "provision")  # its controller died: `running`, nobody holds it
        for step in ("inspect", "firmware"):
            store.step_started(dead.id, step)
            store.step_finished(dead.id, step, StepOutcome.ok)
        done = store.create_run(EXPER, "provision")
        store.finish_run(done.id, RunStatus.succeeded)
        live = store.create_run(COMPUTE, "provision")
        with store.host_lock(COMPUTE):  # a live run: its holder has the lock
            found = scan(store, [COMPUTE, EXPER, MASTER])
        assert found.claimable == (Candidate(MASTER, dead.id, "running", "bios"),)
        assert [h.host for h in found.held] == [COMPUTE] and "is locked by pid" in found.held[0].by
        assert found.finished == 1
        assert scan(store, [COMPUTE]).claimable == (Candidate(COMPUTE, live.id, "running", "inspect"),)


def _controller(capsys: pytest.CaptureFixture[str], state: Path, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["--profiles", str(PROFILES), "--state", str(state), "controller", "--once", *args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_controller_once_reports_what_it_holds_and_claims_nothing_outside_its_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        left = store.create_run(COMPUTE, "provision")  # rack circle-2-lust: outside the scope below
        with store.host_lock(MASTER):
            store.create_run(MASTER, "provision")
            code, out, err = _controller(capsys, state, "--rack", "circle-1-limbo", "--json")
    assert (code, err) == (0, "")
    events = [json.loads(x) for x in out.splitlines()]
    assert [e["event"] for e in events] == ["controller", "held", "summary"]
    assert events[1]["host"] == MASTER and "is locked by pid" in events[1]["by"]
    assert events[2]["claimed"] == [] and events[2]["held"] == [MASTER]
    with StateStore.open(state) as store:
        assert store.get_run(left.id).status is RunStatus.running and store.events(host=COMPUTE) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rack", "circle-1-limbo", "--circle", "2"], "controller: expected a scope with hosts, got none"),
        (
            ["--restart-from", "inspect"],
            "--restart-from: expected none (a take-over only resumes), got inspect",
        ),
        (["--interval", "0"], "Invalid value for '--interval'"),
    ],
)
def test_controller_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _controller(capsys, tmp_path / "state", *args)
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_host_take_over_with_nothing_to_claim_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--profiles", str(PROFILES), "--state", str(tmp_path / "s"), "host", "--all", "--take-over"])
    assert exc.value.code in (0, None)
    assert (
        capsys.readouterr().out == "summary take-over: nothing to claim (0 held, 3 with no unfinished run)\n"
    )


def test_a_take_over_of_a_host_finished_meanwhile_starts_no_new_run(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state") as store:
        done = store.create_run(MASTER, "provision")
        store.finish_run(done.id, RunStatus.succeeded)  # another controller finished it after our scan

        def no_steps(run: object, facts: object) -> dict[StepName, StepFn]:
            raise AssertionError("a take-over with nothing to resume must not build steps")

        req = RunRequest(MASTER, resume_only=True)
        with pytest.raises(NothingToResume, match=f"{MASTER}: no unfinished run to take over"):
            run_host(store, req, PlainProgress(io.StringIO()), no_steps)
        assert [r.id for r in store.list_runs(MASTER)] == [done.id]
        with store.host_lock(MASTER):  # and the lock was given back
            pass
