"""The controller's side of the acceptance contract (issue #13), seen where a user sees it: a suite
must end with a verdict of its own, exit codes mean the verdict, host states move only by rule, an
inconclusive run leaves the state as it was on every path, a missing pre-OS inventory is said, and a
failed optional check warns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.store.lifecycle import HostState
from provision.store.state import StateStore
from tests.conftest import PROFILES, REPO
from tests.support.bundle import FIXTURES
from tests.test_handoff_apply import HOST, Ran, provision


def _result(edit: Any = None) -> dict[str, Any]:
    result = json.loads((FIXTURES / "lust-result.json").read_text())
    if edit is not None:
        edit(result)
    return result


def run_dir(tmp: Path, edit: Any = None, pre_os: bool = True) -> Path:
    d = tmp / "run"
    d.mkdir(parents=True, exist_ok=True)
    (d / "result.json").write_text(json.dumps(_result(edit)))
    shutil.copy(FIXTURES / "lust-telemetry.jsonl", d / "telemetry.jsonl")
    if pre_os:
        shutil.copy(FIXTURES / "lust-redfish-inventory.json", d / "inventory-redfish.json")
    return d


def judge(tmp: Path, edit: Any = None, pre_os: bool = True, profiles: Path = PROFILES) -> tuple[Ran, Any]:
    d = run_dir(tmp, edit, pre_os)
    args = ["--profiles", str(profiles), "report", "--run-dir", str(d), "--profile", "circle-2-lust"]
    res = provision(*args, "--format", "json", state=tmp / "state")
    return res, json.loads(res.stdout)


def by_id(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in record["findings"]}


def store_run(store: StateStore, kind: str = "provision", edit: Any = None) -> str:
    run = store.create_run(HOST, kind)
    store.put_document(run.id, "result.json", json.dumps(_result(edit)).encode())
    store.put_document(run.id, "telemetry.jsonl", (FIXTURES / "lust-telemetry.jsonl").read_bytes())
    store.put_document(
        run.id, "inventory-redfish.json", (FIXTURES / "lust-redfish-inventory.json").read_bytes()
    )
    return run.id


def status_of(state: Path) -> str:
    res = provision("status", "--json", state=state)
    assert res.exit_code == 0, res.output
    return str({h["name"]: h for h in json.loads(res.stdout)["hosts"]}[HOST]["state"])


def no_triad(result: dict[str, Any]) -> None:
    """The memory suite's triad figure is missing: a required floor has no evidence (inconclusive)."""
    result["suites"][1]["measurements"].pop("triad_gbs")


# -- 1. suite_completed needs the suite's own verdict ---------------------------------------------
def test_the_committed_run_is_accepted_as_it_is(tmp_path: Path) -> None:
    res, record = judge(tmp_path)
    assert (res.exit_code, record["verdict"]) == (0, "accepted"), res.output


def test_a_suite_whose_own_verdict_is_inconclusive_is_not_completed(tmp_path: Path) -> None:
    def own_verdict_inconclusive(result: dict[str, Any]) -> None:
        result["suites"][2]["verdict"] = "inconclusive"  # nvme: e.g. a cancelled suite, findings all pass

    res, record = judge(tmp_path, own_verdict_inconclusive)
    done = by_id(record)["suite_completed:suite:nvme"]
    assert done["verdict"] == "inconclusive" and "suite verdict inconclusive" in done["observed"]
    assert record["verdict"] == "inconclusive" and res.exit_code == 1


def test_a_crashed_suite_is_not_completed(tmp_path: Path) -> None:
    def crashed(result: dict[str, Any]) -> None:
        result["suites"][0].update(verdict="inconclusive", error="RuntimeError: boom in a worker thread")

    res, record = judge(tmp_path, crashed)
    assert by_id(record)["suite_completed:suite:cpu"]["verdict"] == "inconclusive"
    assert record["verdict"] == "inconclusive" and res.exit_code == 1


def test_a_suite_inconclusive_only_on_waived_checks_has_completed(
    tmp_path: Path, profiles_copy: Path
) -> None:
    """What the lab relies on: a check the profile waives does not hold the suite back."""
    lust = profiles_copy / "circle-2-lust.yaml"
    text = lust.read_text()
    assert "\nacceptance:\n" in text
    lust.write_text(
        text.replace(
            "\nacceptance:\n", "\nacceptance:\n  not_required: [{check: edac_errors, reason: test}]\n", 1
        )
    )

    def open_on_edac(result: dict[str, Any]) -> None:
        cpu = result["suites"][0]
        cpu["verdict"] = "inconclusive"
        cpu["findings"].append(
            {
                "id": "edac_errors:node",
                "check": "edac_errors",
                "component": "node",
                "expected": "EDAC counters readable",
                "observed": "no EDAC",
                "verdict": "inconclusive",
                "evidence": [],
                "required": True,
                "source": "burnin",
            }
        )

    res, record = judge(tmp_path, open_on_edac, profiles=profiles_copy)
    done = by_id(record)["suite_completed:suite:cpu"]
    assert done["verdict"] == "pass" and "only on waived checks: edac_errors" in done["observed"]
    assert record["verdict"] == "accepted", res.output


# -- 2. exit codes mean the verdict ---------------------------------------------------------------
def test_report_exits_1_for_an_inconclusive_run(tmp_path: Path) -> None:
    res, record = judge(tmp_path, no_triad)
    assert record["verdict"] == "inconclusive"
    assert res.exit_code == 1 and "verdict inconclusive" in res.output


def test_burnin_local_exits_1_for_an_inconclusive_run(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"sample_interval_s": 1, "suites": [{"suite": "gpu", "duration_s": 1}]}))
    argv = [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", str(tmp_path / "s")]
    ran = subprocess.run(
        [*argv, "burnin", "--local", "--plan", str(plan), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    verdict = json.loads(ran.stdout)["verdict"]
    assert verdict == "inconclusive", ran.stdout[-2000:]  # no GPU (nor NVML) on this machine
    assert ran.returncode == 1 and "verdict inconclusive" in ran.stderr, ran.stderr


def test_a_flow_that_ends_without_a_verdict_is_not_exit_0() -> None:
    from provision.cli.launch import _finish
    from provision.flow.fleet import FleetRow
    from provision.model.errors import VerdictFailed

    row = FleetRow(HOST, "ok", None, "r1", None, "", 0.0, "", 0, None)
    with pytest.raises(VerdictFailed):
        _finish([row], as_json=True, fleet=False)


# -- 3. states move only forward by rule ----------------------------------------------------------
def test_rejudging_an_old_run_never_moves_a_host_past_a_newer_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        old = store_run(store)
    first = provision("report", HOST, "--format", "json", state=state)
    assert first.exit_code == 0 and json.loads(first.stdout)["verdict"] == "accepted", first.output
    assert status_of(state) == "accepted"
    with StateStore.open(state) as store:
        store.create_run(HOST, "reinstall")
        store.set_host_state(HOST, HostState.maintenance, "reinstall: out of the pool")

    again = provision("report", HOST, "--run", old, "--format", "json", state=state)
    assert again.exit_code == 0 and json.loads(again.stdout)["verdict"] == "accepted"
    assert status_of(state) == "maintenance"  # read-only without --record

    kept = provision("report", HOST, "--run", old, "--record", "--format", "json", state=state)
    assert kept.exit_code == 0, kept.output
    assert "state left as it was" in kept.output and "is newer than run" in kept.output
    assert status_of(state) == "maintenance"  # recorded, but never past the newer run


def test_the_store_refuses_a_transition_the_table_does_not_allow(tmp_path: Path) -> None:
    from provision.model.errors import TransitionRefused

    with StateStore.open(tmp_path) as store:
        store.create_run(HOST, "reinstall")
        store.set_host_state(HOST, HostState.maintenance, "reinstall")
        with pytest.raises(TransitionRefused) as exc:
            store.set_host_state(HOST, HostState.accepted, "an old run")
        assert "maintenance -> accepted" in str(exc.value) and exc.value.exit_code == 2
        with pytest.raises(TransitionRefused, match="maintenance -> handed-off"):
            store.set_host_state(HOST, HostState.handed_off)
        assert store.get_host_state(HOST) is HostState.maintenance
        store.set_host_state(HOST, HostState.provisioning, "the new run installs")  # a new run's state
        with pytest.raises(TransitionRefused, match="provisioning -> accepted"):
            store.set_host_state(HOST, HostState.accepted)


# -- 4. an inconclusive run leaves the host's state as it was, on every path --------------------------
def test_an_inconclusive_run_leaves_the_state_in_the_flow(tmp_path: Path) -> None:
    from provision.flow.accept_steps import AcceptSteps
    from provision.flow.engine import StepCall, StepName
    from provision.flow.hostenv import HostEnv, StepContext
    from provision.model.catalog import load_catalog

    catalog = load_catalog(PROFILES)
    host = catalog.host(HOST)
    profile = catalog.profile_of(host)
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        run_id = store_run(store, edit=no_triad)
        store.set_host_state(HOST, HostState.burning_in, "burn-in plan quick")
        run = store.get_run(run_id)
        env = HostEnv(
            store,
            host,
            profile,
            profile.timeouts,
            None,
            catalog,
            "",
            tmp_path,
            PROFILES,  # type: ignore[arg-type]
        )
        call = StepCall(HOST, run_id, StepName.validate, {}, None, 1)  # type: ignore[arg-type]
        done = AcceptSteps(StepContext(env, run)).validate(call)
    assert done.facts["verdict"] == "inconclusive"
    assert status_of(state) == "burning-in"


def test_an_inconclusive_run_leaves_the_state_in_report(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        store_run(store, edit=no_triad)
        store.set_host_state(HOST, HostState.burning_in, "burn-in plan quick")
    res = provision("report", HOST, "--format", "json", state=state)
    assert res.exit_code == 1 and json.loads(res.stdout)["verdict"] == "inconclusive"
    assert status_of(state) == "burning-in"
    with StateStore.open(state) as store:
        kept = [e.payload for e in store.events(host=HOST) if e.kind == "acceptance"]
    assert kept and "inconclusive: it proves nothing either way" in kept[-1]["state_kept"]


# -- 5. a missing pre-OS inventory is said ------------------------------------------------------------
def test_a_run_without_a_pre_os_inventory_says_so(tmp_path: Path) -> None:
    """The shipped metal profiles demand the BMC's view (`acceptance.pre_os_required: true`)."""
    res, record = judge(tmp_path, pre_os=False)
    missing = by_id(record)["pre_os_crosscheck:bmc"]
    assert missing["verdict"] == "inconclusive" and missing["required"]
    assert "no pre-OS inventory" in missing["observed"]
    assert record["verdict"] == "inconclusive" and res.exit_code == 1
    res, record = judge(tmp_path / "with", pre_os=True)
    assert "pre_os_crosscheck:bmc" not in by_id(record) and record["verdict"] == "accepted"


def test_a_profile_that_does_not_demand_the_pre_os_crosscheck_shows_it_optional(
    tmp_path: Path, profiles_copy: Path
) -> None:
    lust = profiles_copy / "circle-2-lust.yaml"
    lust.write_text(lust.read_text().replace("  pre_os_required: true", "  pre_os_required: false", 1))
    res, record = judge(tmp_path, pre_os=False, profiles=profiles_copy)
    assert by_id(record)["pre_os_crosscheck:bmc"]["required"] is False
    assert record["verdict"] == "accepted" and res.exit_code == 0


# -- 6. a failed optional finding warns, never rejects -------------------------------------------------
def test_a_failed_optional_finding_does_not_reject(tmp_path: Path) -> None:
    def optional_failure(result: dict[str, Any]) -> None:
        result["suites"][0]["findings"].append(
            {
                "id": "cpu_clock_spread:node",
                "check": "cpu_clock_spread",
                "component": "node",
                "expected": "within 5%",
                "observed": "7%",
                "verdict": "fail",
                "evidence": [],
                "required": False,
                "source": "burnin",
            }
        )

    res, record = judge(tmp_path, optional_failure)
    assert by_id(record)["cpu_clock_spread:node"]["verdict"] == "fail"
    assert (record["verdict"], res.exit_code) == ("accepted", 0), res.output
