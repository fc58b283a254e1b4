"""The controller's plan building (pure) and the `provision burnin` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provision.agent.plan import build_plan, expect_from_profile, peak_bandwidth_gbs
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.model.hosts import DiskId
from provision.model.profile import DriveRole
from provision.store.state import RunStatus, StateStore
from tests.conftest import PROFILES, REPO, require_tool

CATALOG = load_catalog(PROFILES)


@pytest.mark.parametrize(
    ("profile", "peak", "nvme_count", "logical"),
    [("circle-2-lust", 1152.0, 4, 384), ("circle-6-heresy", 460.8, 2, 64), ("circle-1-limbo", 307.2, 0, 128)],
)
def test_expect_from_profile(profile: str, peak: float, nvme_count: int, logical: int) -> None:
    p = CATALOG.profiles[profile]
    assert peak_bandwidth_gbs(p) == peak
    e = expect_from_profile(p)
    assert e["memory"]["peak_bandwidth_gbs"] == peak
    assert e["nvme"]["count"] == nvme_count
    assert e["cpu"]["logical_cpus"] == logical and e["cpu"]["model"] == p.cpu.model
    assert e["gpus"]["count"] == p.gpu_count


def test_quick_plan_from_profile_gets_defaults() -> None:
    p = CATALOG.profiles["circle-2-lust"]
    plan = build_plan("r1", "inferno-host-compute-1", "quick", profile=p)
    assert [s["suite"] for s in plan["suites"]] == ["cpu", "memory", "nvme", "boot_disks", "gpu"]
    mem = next(s for s in plan["suites"] if s["suite"] == "memory")
    assert mem["options"]["max_mib"] == 4096 and mem["required"] is True
    assert plan["allow_destructive"] == []
    assert plan["expect"]["power"]["soak_cpu_load_pct"] == 100  # 2.7 kW of burn fits the 4,992 W feed


def test_acceptance_allow_lists_scratch_disks_by_serial_and_wwn() -> None:
    host = CATALOG.host("inferno-host-exper-1")
    host = host.model_copy(update={"scratch_disks": (DiskId(serial="S1"), DiskId(wwn="eui.0025"))})
    plan = build_plan("r2", host.name, "acceptance", profile=CATALOG.profile_of(host), host=host)
    assert plan["allow_destructive"] == [{"serial": "S1"}, {"wwn": "eui.0025"}]
    # a plan with no destructive suite allow-lists nothing, whatever the host lists
    plan = build_plan("r3", host.name, "quick", profile=CATALOG.profile_of(host), host=host)
    assert plan["allow_destructive"] == []
    # nor does a profile whose scratch class forbids destructive tests
    p = CATALOG.profile_of(host)
    storage = tuple(d.model_copy(update={"destructive_allowed": False}) for d in p.storage)
    plan = build_plan(
        "r3", host.name, "acceptance", profile=p.model_copy(update={"storage": storage}), host=host
    )
    assert plan["allow_destructive"] == []


def test_plan_document_and_bad_names() -> None:
    doc = {"suites": [{"suite": "cpu", "duration_s": 5}], "expect": {"cpu": {"logical_cpus": 2}}}
    plan = build_plan("r4", "local", doc)
    assert plan["expect"] == {"cpu": {"logical_cpus": 2}} and plan["suites"][0]["options"] == {}
    with pytest.raises(BadInput, match="--plan: expected quick, acceptance or a plan FILE, got 'soak'"):
        build_plan("r5", "local", "soak")
    with pytest.raises(BadInput, match="plan file: suites: expected a non-empty list"):
        build_plan("r6", "local", {"suites": []})


def provision(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provision", "--state", str(tmp_path / "state"), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def test_burnin_command_bad_input(tmp_path: Path) -> None:
    r = provision(tmp_path, "burnin")
    assert (
        r.returncode == 2
        and r.stderr == "provision: burnin: expected HOST or --local (exactly one), got neither\n"
    )
    r = provision(tmp_path, "burnin", "--local", "--plan", "nosuch.json")
    assert r.returncode == 2
    assert (
        r.stderr
        == "provision: --plan: expected quick, acceptance or a plan FILE, got 'nosuch.json' (no such file)\n"
    )
    r = provision(tmp_path, "burnin", "--local", "--profile", "circle-9", "--plan", "quick")
    assert (
        r.returncode == 2
        and "--profile: expected one of circle-1-limbo, circle-2-lust, circle-6-heresy" in r.stderr
    )


@pytest.mark.slow
def test_burnin_local_with_a_plan_file_against_a_profile(tmp_path: Path) -> None:
    require_tool("stress-ng")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "name": "tiny",
                "suites": [{"suite": "cpu", "duration_s": 2}, {"suite": "nvme", "duration_s": 1}],
            }
        )
    )
    r = provision(
        tmp_path, "burnin", "--local", "--plan", str(plan), "--profile", "circle-6-heresy", "--json"
    )
    # this VM is not a Heresy host: the CPU count mismatch is a failed finding (exit 1), not a crash
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "fail" and doc["host"] == "local"
    cpu, nvme = doc["suites"]
    lc = next(f for f in cpu["findings"] if f["id"] == "logical_cpus:cpu")
    assert lc["expected"] == "64" and lc["verdict"] == "fail"
    assert cpu["measurements"]["bogo_ops"] > 0 and cpu["evidence"][0]["sha256"]
    # no NVMe here: nothing to test (inconclusive), and fewer drives than the profile's 2 (fail)
    by_id = {f["id"]: f for f in nvme["findings"]}
    assert by_id["nvme_present:nvme"]["verdict"] == "inconclusive"
    assert (by_id["nvme_count:nvme"]["expected"], by_id["nvme_count:nvme"]["observed"]) == ("2", "0")
    assert nvme["verdict"] == "fail" and nvme["error"].startswith("no NVMe namespaces")
    run_dir = Path(doc["run_dir"])
    assert run_dir == tmp_path / "state" / "runs" / doc["run_id"]
    assert json.loads((run_dir / "result.json").read_text())["run_id"] == doc["run_id"]
    assert (run_dir / "agent" / "events.jsonl").is_file()  # the agent's own run directory, kept
    with StateStore.open(tmp_path / "state") as store:
        run = store.latest_run("local", "burnin")
        assert run is not None and run.id == doc["run_id"] and run.status is RunStatus.failed
        assert {d.name for d in store.documents(run.id)} == {"result.json", "inventory.json"}


def test_boot_disks_under_the_os_are_the_mirror_members_or_the_one_disk_without_a_mirror() -> None:
    seed = CATALOG.profiles["circle-2-lust"]
    seed_boot = seed.drives(DriveRole.boot)
    assert seed_boot is not None and seed_boot.raid == "raid1"
    assert expect_from_profile(seed)["boot_disks"]["count"] == seed_boot.count == 2
    lab = load_catalog(REPO / "profiles-lab").profiles["lab-vm"]
    boot = expect_from_profile(lab)["boot_disks"]
    assert (boot["count"], boot["raid"]) == (1, None)  # the stand-in writes one disk, mirrors none


def test_acceptance_plan_runs_dcgm_at_the_profiles_level_and_quick_runs_none() -> None:
    p = CATALOG.profiles["circle-2-lust"]
    assert p.gpus is not None
    level = p.gpus.dcgm_diag_level
    acc = build_plan("r7", "inferno-host-compute-1", "acceptance", profile=p)
    gpu = next(s for s in acc["suites"] if s["suite"] == "gpu")
    assert gpu["options"]["dcgm_level"] == level
    # a quick plan is a smoke test: no DCGM (its -r 3/4 alone runs for tens of minutes)
    quick = build_plan("r8", "inferno-host-compute-1", "quick", profile=p)
    assert "dcgm_level" not in next(s for s in quick["suites"] if s["suite"] == "gpu")["options"]
