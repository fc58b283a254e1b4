"""`provision firmware` and `provision inspect` against sushy-static serving a hand-written drift:
one of four identical GPUs and one of four identical NVMe drives on other firmware, a BMC below the
profile's baseline, a CPLD the BMC cannot update."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.model.catalog import load_catalog
from tests.conftest import PROFILES
from tests.support.mockup import Faults, Style, build_tree, write_tree
from tests.support.redfish_rig import cli, set_bmc, static

CATALOG = load_catalog(PROFILES)
HOST = "inferno-host-compute-1"
FIXTURES = Path(__file__).parent / "fixtures" / "firmware"
BASELINE = {
    "uniformity": "fail",
    "baseline": {
        "bmc": {"minimum": "01.05.00"},
        "gpu": {"allowed": ["98.02.2E.00.05"]},
        "drive": {"minimum": "GDC5902Q", "model": "MZQL23T8"},
        "psu": {"minimum": "1.3"},
    },
}


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("INFERNO_BMC_COMPUTE_1", "INFERNO_BMC_EXPER_1", "INFERNO_BMC_MASTER"):
        monkeypatch.setenv(var, "admin:secret")


def drift_tree(directory: Path, overlay: str = "compute-1-drift.json") -> Path:
    entry = CATALOG.host(HOST)
    tree = build_tree(CATALOG.profile_of(entry), entry, Style.supermicro, Faults())
    for path, doc in json.loads((FIXTURES / overlay).read_text()).items():
        if not path.startswith("_"):
            tree[path] = {**tree.get(path, {}), **doc}
    return write_tree(tree, directory)


def with_baseline(profiles: Path, block: dict[str, Any]) -> None:
    path = profiles / "circle-2-lust.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["firmware"] = block
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _run(
    tmp_path: Path, profiles: Path, capsys: pytest.CaptureFixture[str], command: str
) -> tuple[int, dict[str, Any], str]:
    tree = drift_tree(tmp_path / "mockup")
    with static(tree, tmp_path / "static.log") as svc:
        set_bmc(profiles, HOST, url=svc.url, retry_delay_s=0.05)
        state = ["--state", str(tmp_path / "state")]
        rc, out, err = cli(["--profiles", str(profiles), *state, command, HOST, "--json"], capsys)
    return rc, json.loads(out) if out else {}, err


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in data["findings"] if f["check"].startswith("firmware_")}


def test_firmware_lists_every_component_and_names_the_odd_parts(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_baseline(profiles_copy, BASELINE)
    rc, data, err = _run(tmp_path, profiles_copy, capsys, "firmware")
    assert rc == 1, err
    rows = {r["name"]: r for r in data["firmware"]}
    assert rows["bios"]["version"] == "3.1" and rows["bios"]["updateable"] is True
    assert rows["bmc"]["version"] == "01.04.08"
    assert rows["Motherboard CPLD"]["component"] == "cpld" and rows["Motherboard CPLD"]["updateable"] is False
    assert rows["gpu:GPU3"]["version"] == "98.02.1A.00.01" and rows["gpu:GPU3"]["updateable"] is True
    assert rows["gpu:GPU3"]["path"].endswith("/FirmwareInventory/GPU3_VBIOS")  # one row, not two
    assert rows["gpu:GPU1"]["serial"] == "GPUIHC1000"
    assert rows["drive:Disk4"]["version"] == "GDC5602Q"
    assert {r["component"] for r in data["firmware"]} >= {"bios", "bmc", "cpld", "gpu", "drive", "psu"}
    found = _by_id(data)
    gpu = found["firmware_uniform:gpu:GPU3 (SLOT3, serial GPUIHC1002)"]
    assert gpu["verdict"] == "fail"
    assert gpu["expected"].startswith("98.02.2E.00.05 (as 3 of its 3 siblings")
    assert gpu["observed"].startswith("98.02.1A.00.01; all: 98.02.2E.00.05 on gpu:GPU1, gpu:GPU2, gpu:GPU4")
    assert gpu["evidence"] == ["redfish.inventory"]
    assert found["firmware_uniform:drive:Disk4 (serial NIHC1004)"]["verdict"] == "fail"
    assert found["firmware_uniform:psu:PWS-2K70A-1R x4"]["verdict"] == "pass"
    bmc = found["firmware_baseline:bmc"]
    assert (bmc["verdict"], bmc["expected"], bmc["observed"]) == ("fail", ">= 01.05.00", "01.04.08")
    assert found["firmware_baseline:gpu:GPU3 (SLOT3, serial GPUIHC1002)"]["verdict"] == "fail"
    assert found["firmware_baseline:gpu:GPU1 (SLOT1, serial GPUIHC1000)"]["verdict"] == "pass"
    assert found["firmware_baseline:drive:Disk4 (serial NIHC1004)"]["verdict"] == "fail"
    assert found["firmware_baseline:drive:Disk2 (serial NIHC1002)"]["verdict"] == "pass"
    # The SATA boot drives are another model: the drive baseline names only the NVMe ones.
    assert not any("S6KLNA0W" in i for i in found if i.startswith("firmware_baseline"))
    assert "secret" not in json.dumps(data) + err


def test_warn_policy_and_the_human_listing(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_baseline(profiles_copy, {"uniformity": "warn"})
    tree = drift_tree(tmp_path / "mockup")
    with static(tree, tmp_path / "static.log") as svc:
        set_bmc(profiles_copy, HOST, url=svc.url, retry_delay_s=0.05)
        state = ["--state", str(tmp_path / "state")]
        rc, out, err = cli(["--profiles", str(profiles_copy), *state, "firmware", HOST], capsys)
    assert rc == 0, err  # drift only warns under this profile
    assert (
        "WARN         firmware_uniform   gpu:GPU3 (SLOT3, serial GPUIHC1002): expected 98.02.2E.00.05" in out
    )
    assert "Motherboard CPLD" in out and "F1.02.3A" in out


def test_inspection_carries_the_same_findings(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_baseline(profiles_copy, BASELINE)
    rc, data, err = _run(tmp_path, profiles_copy, capsys, "inspect")
    assert rc == 1, err
    found = _by_id(data)
    assert found["firmware_uniform:gpu:GPU3 (SLOT3, serial GPUIHC1002)"]["verdict"] == "fail"
    assert found["firmware_baseline:bmc"]["verdict"] == "fail"
    fw = {f["name"]: f for f in data["inventory"]["firmware"]}
    assert fw["Motherboard CPLD"]["updateable"] is False and fw["GPU3 VBIOS"]["component"] == "gpu"
