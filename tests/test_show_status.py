"""`provision show` carries every seed fact of a host; `provision status` shows the store's view."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.cli import main as cli
from provision.model.catalog import load_catalog
from provision.store.db import SCHEMA_VERSION
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from tests.conftest import PROFILES, REPO

PROVISION = Path(sys.executable).parent / "provision"
COMPUTE = "inferno-host-compute-1"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = _cli([*args, "--json"], capsys)
    assert (code, err) == (0, "")
    return json.loads(out)


def test_show_json_carries_every_seed_fact_of_compute_1(tmp_path: Path) -> None:
    if not PROVISION.exists():
        pytest.skip(f"{PROVISION} is not installed (make setup installs it)")
    proc = subprocess.run(
        [str(PROVISION), "--profiles", str(PROFILES), "--state", str(tmp_path), "show", COMPUTE, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    data = json.loads(proc.stdout)
    host, p, d = data["host"], data["profile"], data["derived"]
    # The seed, "Circle 2: Lust", fact by fact.
    assert (host["name"], host["rack"], p["platform"]["rack"]) == (COMPUTE, "circle-2-lust", "circle-2-lust")
    assert p["chassis"] == {"vendor": "Supermicro", "model": "AS-4125GS-TNR", "height_u": 4, "gpu_slots": 8}
    cpu = p["cpu"]
    assert (cpu["sockets"], cpu["model"], cpu["cores_per_socket"]) == (
        2,
        "AMD EPYC 9655 96-Core Processor",
        96,
    )
    assert (cpu["base_mhz"], cpu["tdp_w"]) == (2600, 400)
    mem = p["memory"]
    assert (mem["dimm_count"], mem["dimm_size_gib"], mem["type"], mem["form"]) == (24, 32, "DDR5", "RDIMM")
    assert (mem["rated_mts"], mem["ecc"], d["memory_total_gib"]) == (6400, True, 768)
    gpus = p["gpus"]
    assert (gpus["count"], gpus["seed_name"], gpus["seed_memory_gb"], gpus["power_limit_w"]) == (
        4,
        "NVIDIA RTX PRO 6000 Blackwell",
        96,
        300,
    )
    scratch, boot = (next(s for s in p["storage"] if s["role"] == role) for role in ("scratch", "boot"))
    assert (scratch["count"], scratch["seed_capacity"], scratch["interface"], scratch["pcie_gen"]) == (
        4,
        "3.84 TB",
        "nvme",
        5,
    )
    assert (boot["count"], boot["seed_capacity"], boot["interface"], boot["raid"]) == (
        2,
        "960 GB",
        "sata",
        "raid1",
    )
    power = p["power"]
    assert (power["expected_draw_w"], power["receptacle"], power["pdu"]) == (
        2300,
        "NEMA 6-30R",
        "inferno-pdu-circle2-1",
    )
    assert (host["pdu"], host["designation"], d["memory_gib_per_core"]) == (
        "inferno-pdu-circle2-1",
        "primary",
        4,
    )
    assert p["platform"]["use_cases"] == ["high-density inference", "model fine-tuning", "batch training"]
    pf = p["platform"]
    assert (pf["pool"], pf["labels"], pf["namespace"]) == (
        "inferno-pool-gpu",
        {"inferno.circle": "2"},
        "inferno-circle-2",
    )
    assert pf["taints"] == [{"key": "inferno/gpu", "value": "true", "effect": "NoSchedule"}]
    assert (pf["reserved_cpu_pct"], pf["reserved_memory_mib"], gpus["resource_name"]) == (
        10,
        1024,
        "nvidia.com/gpu",
    )
    nics = {n["name"]: n for n in p["network"]}
    assert (nics["eth0"]["role"], nics["eth0"]["speed_gbps"]) == ("management", 10)
    assert (nics["eth1"]["speed_gbps"], nics["eth1"]["peer"]) == (25, "inferno-switch-aggregation-1")
    assert (nics["ib0"]["required"], nics["ib0"]["protocol"]) == (False, "RoCEv2")
    assert (pf["os"]["name"], pf["os"]["version"]) == ("Rocky Linux", "9.3")
    # Derived figures, from the facts above.
    assert d["logical_cpus"] == 2 * 96 * 2
    assert d["memory_peak_bandwidth_gbs"] == 6000 * 8 * 12 * 2 / 1000
    assert d["feed_continuous_w"] == 30 * 208 * 80 // 100
    assert d["full_burn_w"] == 2 * 400 + 4 * 300 + 700
    assert d["gpu_memory_total_mib"] == 4 * 97887
    # Nothing of the profile or the inventory entry is left out.
    catalog = load_catalog(PROFILES)
    assert host == catalog.host(COMPUTE).model_dump(mode="json")
    assert p == catalog.profiles["circle-2-lust"].model_dump(mode="json")
    assert data["lifecycle"] == {"state": "enrolled", "updated_at": None, "last_run_id": None, "known": False}
    assert not tmp_path.joinpath("state.sqlite3").exists()  # a read command creates no store


def test_show_human_and_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with StateStore.open(tmp_path) as store:
        run = store.create_run(COMPUTE, "provision")
        store.set_host_state(COMPUTE, HostState.burning_in, "install done")
    code, out, _ = _cli(["--profiles", str(PROFILES), "--state", str(tmp_path), "show", COMPUTE], capsys)
    assert code == 0
    assert out.splitlines()[0] == f"{COMPUTE}  (burning-in, primary)"
    assert "peak 1152.0 GB/s" in out and "384 logical CPUs" in out and f"last run    {run.id}" in out
    data = _json(["--profiles", str(PROFILES), "--state", str(tmp_path), "show", COMPUTE], capsys)
    assert (data["lifecycle"]["state"], data["lifecycle"]["last_run_id"]) == ("burning-in", run.id)


def test_show_unknown_host_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(
        ["--profiles", str(PROFILES), "--state", str(tmp_path), "show", "inferno-host-x-9"], capsys
    )
    assert (code, out) == (2, "")
    assert err == (
        f"provision: {PROFILES}/hosts.yaml: host: expected one of inferno-host-compute-1, "
        "inferno-host-exper-1, inferno-host-master, got 'inferno-host-x-9'\n"
    )


def test_status_of_a_fresh_site_is_all_enrolled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "never-created"
    data = _json(["--profiles", str(PROFILES), "--state", str(state), "status"], capsys)
    assert [(h["name"], h["state"], h["profile"]) for h in data["hosts"]] == [
        ("inferno-host-compute-1", "enrolled", "circle-2-lust"),
        ("inferno-host-exper-1", "enrolled", "circle-6-heresy"),
        ("inferno-host-master", "enrolled", "circle-1-limbo"),
    ]
    assert not state.exists()


def test_status_shows_states_runs_and_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with StateStore.open(tmp_path) as store:
        store.set_host_state("inferno-host-master", HostState.accepted, "burn-in passed")
        store.set_host_state("inferno-host-retired-1", HostState.maintenance)
        first = store.create_run(COMPUTE, "provision")
        store.step_started(first.id, "inspect")
        store.step_finished(first.id, "inspect", StepOutcome.failed, message="BMC timed out")
        store.finish_run(first.id, RunStatus.failed)
        second = store.create_run(COMPUTE, "provision")
        store.step_started(second.id, "inspect")
        store.step_finished(second.id, "inspect", StepOutcome.ok, {"doc": "inventory.json"})
        store.step_started(second.id, "install")
        store.set_host_state(COMPUTE, HostState.provisioning, "kickstart served")
    args = ["--profiles", str(PROFILES), "--state", str(tmp_path), "status"]
    listing = {h["name"]: h for h in _json(args, capsys)["hosts"]}
    assert listing["inferno-host-master"]["state"] == "accepted"
    assert (listing[COMPUTE]["state"], listing[COMPUTE]["last_run_id"]) == ("provisioning", second.id)
    assert listing["inferno-host-exper-1"]["state"] == "enrolled"
    assert listing["inferno-host-retired-1"]["in_inventory"] is False

    one = _json([*args, COMPUTE], capsys)
    assert one["state"] == "provisioning"
    assert [r["id"] for r in one["runs"]] == [second.id, first.id]  # newest first
    assert [(s["step"], s["outcome"]) for s in one["runs"][0]["steps"]] == [
        ("inspect", "ok"),
        ("install", None),
    ]
    assert one["runs"][1]["steps"][0]["message"] == "BMC timed out"
    assert one["history"][-1]["reason"] == "kickstart served"

    code, out, _ = _cli([*args, COMPUTE], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{COMPUTE}: provisioning (profile circle-2-lust, rack circle-2-lust)"
    assert any(line.strip().startswith("install") and "running" in line for line in lines)
    assert any("BMC timed out" in line for line in lines)
    code, out, _ = _cli(args, capsys)
    assert any(
        line.startswith("inferno-host-retired-1") and "(not in inventory)" in line
        for line in out.splitlines()
    )


def test_status_of_an_unknown_host_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(["--profiles", str(PROFILES), "--state", str(tmp_path), "status", "nope"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"provision: {PROFILES}/hosts.yaml: host: expected one of ") and "got 'nope'" in err


def test_a_state_store_from_a_newer_provision_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    with StateStore.open(tmp_path):
        pass
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.execute("UPDATE schema_version SET version = 7")
    db.commit()
    db.close()
    code, out, err = _cli(["--profiles", str(PROFILES), "--state", str(tmp_path), "status"], capsys)
    assert (code, out) == (3, "")
    assert err == (
        f"provision: {tmp_path}/state.sqlite3: expected schema version <= {SCHEMA_VERSION} "
        "(this provision), got 7: "
        "the state was written by a newer provision\n"
    )
