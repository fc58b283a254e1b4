"""`provision inspect` against sushy-static serving mockup trees built from the project's profiles:
every seed host in the Supermicro layout, the Dell and DMTF layouts, and injected faults."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from provision.model.catalog import load_catalog
from provision.store.state import HostState, RunStatus, StateStore
from tests.conftest import PROFILES
from tests.support.mockup import Faults, Style, build_tree, write_tree
from tests.support.redfish_rig import cli, set_bmc, static

CATALOG = load_catalog(PROFILES)
SEED_HOSTS = sorted(CATALOG.hosts)


def _inspect(
    tmp_path: Path,
    profiles: Path,
    capsys: pytest.CaptureFixture[str],
    host: str,
    style: Style = Style.supermicro,
    faults: Faults | None = None,
) -> tuple[int, dict[str, Any], str]:
    entry = CATALOG.host(host)
    tree = write_tree(
        build_tree(CATALOG.profile_of(entry), entry, style, faults or Faults()), tmp_path / "mockup"
    )
    with static(tree, tmp_path / "static.log") as svc:
        set_bmc(profiles, host, url=svc.url, retry_delay_s=0.05)
        state = ["--state", str(tmp_path / "state")]
        rc, out, err = cli(["--profiles", str(profiles), *state, "inspect", host, "--json"], capsys)
    return rc, json.loads(out) if out else {}, err


def _failed(data: dict[str, Any]) -> list[str]:
    return [f["id"] for f in data["findings"] if f["verdict"] == "fail"]


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("INFERNO_BMC_COMPUTE_1", "INFERNO_BMC_EXPER_1", "INFERNO_BMC_MASTER"):
        monkeypatch.setenv(var, "admin:secret")


@pytest.mark.parametrize("host", SEED_HOSTS)
def test_each_seed_host_inspects_with_every_part(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    rc, data, err = _inspect(tmp_path, profiles_copy, capsys, host)
    assert set(data) >= {"inventory", "findings"}
    profile = CATALOG.profile_of(CATALOG.host(host))
    slots = profile.cpu.sockets * profile.cpu.dimm_slots_per_socket
    # circle-6-heresy keeps the seed's "1 CPU + 16 DIMMs", which 12 live slots cannot hold: the tree
    # serves the 12 a real board could carry, and inspection must say the profile is not met.
    unbuildable = profile.memory.dimm_count > slots
    expected_failures = ["dimm_count:memory", "dimm_count_socket:memory:socket 1"] if unbuildable else []
    assert (rc, _failed(data)) == (1 if unbuildable else 0, expected_failures), err
    inv = data["inventory"]
    assert inv["source"] == "redfish" and inv["gaps"] == {}
    assert [c["model"] for c in inv["cpus"]] == [profile.cpu.model] * profile.cpu.sockets
    present = [d for d in inv["dimms"] if d["present"]]
    assert len(present) == min(profile.memory.dimm_count, slots)
    assert len(inv["dimms"]) == profile.cpu.sockets * profile.cpu.dimm_slots_per_socket  # absent slots too
    assert {d["size_mib"] for d in present} == {profile.memory.dimm_size_gib * 1024}
    assert len({d["serial"] for d in present}) == len(present)
    assert len(inv["gpus"]) == profile.gpu_count
    assert all(g["pcie_gen_current"] == profile.gpus.pcie_gen for g in inv["gpus"]) if profile.gpus else True
    assert len(inv["drives"]) == sum(c.count for c in profile.storage)
    assert [n["mac"] for n in inv["nics"]][:2] == [i.mac for i in CATALOG.host(host).interfaces]
    assert inv["power"] and inv["temperatures"] and inv["firmware"]
    verdicts = {f["verdict"] for f in data["findings"] if f["id"] not in expected_failures}
    assert verdicts == {"pass"}
    checks = {f["check"] for f in data["findings"]}
    assert {"cpu_model", "dimm_count", "dimm_speed", "drive_capacity", "nic_present", "nic_speed"} <= checks
    # The inspection is journaled: the host is `inspected`, its documents are the printed ones.
    with StateStore.open(tmp_path / "state") as store:
        assert store.get_host_state(host) is HostState.inspected
        run = store.get_run(data["run_id"])
        assert (run.kind, run.status) == ("inspect", RunStatus.failed if unbuildable else RunStatus.succeeded)
        stored = json.loads(store.get_document(run.id, "inventory-redfish.json"))
        assert stored == inv
    # Every finding points at evidence that exists: the stored inventory, by path and sha256.
    (evidence,) = data["evidence"]
    assert {e for f in data["findings"] for e in f["evidence"]} == {evidence["id"]}
    blob = (tmp_path / "state" / evidence["artifact"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == evidence["sha256"]


def test_missing_dimm_low_gpu_link_and_wrong_drive_fail_naming_the_part(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = "inferno-host-compute-1"
    faults = Faults(missing_dimm=13, gpu_link=(2, 3, 8), drive_bytes=(3, 1920383410176))
    rc, data, err = _inspect(tmp_path, profiles_copy, capsys, host, faults=faults)
    assert rc == 1
    failed = _failed(data)
    assert "dimm_present:dimm:P2-DIMMB1" in failed
    assert "dimm_count:memory" in failed and "dimm_count_socket:memory:socket 2" in failed
    assert "gpu_pcie_link:gpu:GPU3 (SLOT3, serial GPUIHC1002)" in failed
    assert "drive_capacity:drive:Disk3 (serial NIHC1003)" in failed
    assert len(failed) == 5
    link = next(f for f in data["findings"] if f["check"] == "gpu_pcie_link" and f["verdict"] == "fail")
    assert (link["expected"], link["observed"]) == ("Gen5 x16", "Gen3 x8")
    assert "inspection finding(s) failed" in err and "gpu_pcie_link" in err


def test_hpe_layout_without_host_nics_is_inconclusive_not_pass(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, data, err = _inspect(tmp_path, profiles_copy, capsys, "inferno-host-compute-1", Style.hpe)
    assert rc == 0, err  # nothing failed...
    assert data["verdict"] == "inconclusive"  # ...but the NICs could not be seen before the OS
    nic = {f["id"]: f["verdict"] for f in data["findings"] if f["check"] == "nic_present"}
    assert nic == {"nic_present:nic:eth0": "inconclusive", "nic_present:nic:eth1": "inconclusive",
                   "nic_present:nic:ib0": "inconclusive"}  # fmt: skip
    gpus = data["inventory"]["gpus"]
    assert [(g["index"], g["slot"], g["pci_device_id"]) for g in gpus][:1] == [("GPU1", "SLOT1", "0x2bb4")]
    assert set(data["inventory"]["gaps"]) == {"nics", "gpus"}


@pytest.mark.parametrize("style", [Style.dell, Style.dmtf])
def test_vendor_layouts_inspect_the_same_parts(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], style: Style
) -> None:
    host = "inferno-host-compute-1"
    rc, data, err = _inspect(tmp_path, profiles_copy, capsys, host, style)
    inv = data["inventory"]
    assert rc == 0, err
    assert (
        len(inv["cpus"]) == 2 and len(inv["gpus"]) == 4 and len(inv["drives"]) == 6 and len(inv["nics"]) == 3
    )
    assert len([d for d in inv["dimms"] if d["present"]]) == 24
    assert [g["pci_device_id"] for g in inv["gpus"]] == ["0x2bb4"] * 4
    assert inv["volumes"][0]["raid_type"] == "RAID1"
    if style is Style.dmtf:
        assert [c["name"] for c in inv["storage_controllers"]] == ["RAIDIntegrated/0", "NVMeSWRAID/0"]
        assert inv["gpus"][0]["index"] == "GPU_SXM_1"  # read from the baseboard System
        assert inv["power"][0]["watts"] == 575.0  # PowerSubsystem
    bad = [f for f in data["findings"] if f["verdict"] not in ("pass", "warn")]
    assert bad == []


def test_bmc_without_storage_detail_is_inconclusive_not_pass(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, data, _ = _inspect(
        tmp_path,
        profiles_copy,
        capsys,
        "inferno-host-master",
        Style.supermicro,
        Faults(simple_storage_only=True),
    )
    assert rc == 0  # inconclusive is not a failure of the hardware...
    assert data["verdict"] == "inconclusive"  # ...but it is not a pass either
    drive = next(f for f in data["findings"] if f["check"] == "drive_count")
    assert drive["verdict"] == "inconclusive"
    assert "SimpleStorage" in data["inventory"]["gaps"]["storage"]


def test_the_password_reaches_the_bmc_but_never_our_output_or_logs(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = "Canary-inspect-51d2"
    monkeypatch.setenv("INFERNO_BMC_MASTER", f"admin:{canary}")
    caplog.set_level(logging.DEBUG)
    rc, data, err = _inspect(tmp_path, profiles_copy, capsys, "inferno-host-master")
    assert rc == 0
    # sushy-static prints request headers: the credential really went over the wire (Basic auth)...
    sent = base64.b64encode(f"admin:{canary}".encode()).decode()
    assert sent in (tmp_path / "static.log").read_text()
    # ...and appears nowhere on our side.
    stored = [p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(stored) >= 3  # the database and the two documents
    for text in (json.dumps(data), err, caplog.text, *(b.decode(errors="replace") for b in stored)):
        assert canary not in text and sent not in text
    assert "/redfish/v1/Systems/1/Memory" in caplog.text
