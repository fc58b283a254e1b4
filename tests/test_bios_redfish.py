"""`provision bios` against real Redfish services: sushy-static serving a hand-written Dell-style tree
(an AttributeRegistry, a pending Settings object, a vendor attribute set), and sushy-emulator
running its own Bios, Bios/Settings and registry routes over BIOS state kept as its libvirt driver
keeps it (tests.support.bios_emulator): read, --apply, reset, read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.bios_emulator import bios_emulator
from tests.support.mockup import write_tree
from tests.support.redfish_rig import NODE, cli, set_bmc, static

HOST = "inferno-host-master"
PROFILE = "circle-1-limbo.yaml"
TREE = Path(__file__).parent / "fixtures" / "bios" / "dell-tree.json"
SYSTEM = "/redfish/v1/Systems/System.Embedded.1"


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:Canary-pw-5d1e")


def set_bios(profiles: Path, bios: dict[str, Any] | None) -> None:
    path = profiles / PROFILE
    doc = yaml.safe_load(path.read_text())
    doc.pop("bios", None)
    if bios is not None:
        doc["bios"] = bios
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def dell_tree(**changes: Any) -> dict[str, Any]:
    tree: dict[str, Any] = json.loads(TREE.read_text())
    for path, doc in changes.items():
        if doc is None:
            tree.pop(path, None)
        else:
            tree[path] = doc
    return tree


@contextmanager
def dell(tmp_path: Path, profiles: Path, tree: dict[str, Any] | None = None) -> Iterator[list[str]]:
    root = write_tree(tree or dell_tree(), tmp_path / "mockup")
    with static(root, tmp_path / "static.log") as svc:
        set_bmc(profiles, HOST, url=svc.url, retry_delay_s=0.05)
        yield ["--profiles", str(profiles), "--state", str(tmp_path / "state")]


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    rc, out, err = cli([*argv, "--json"], capsys)
    return rc, json.loads(out) if out.strip() else {}, err


def by_component(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["component"]: f for f in data["findings"]}


# -- sushy-static: a Dell-style BIOS with its AttributeRegistry ---------------------------------


def test_common_settings_map_to_dell_names_and_differences_fail(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bios(profiles_copy, {"smt": True, "nps": 4, "iommu": True, "power_profile": "performance"})
    with dell(tmp_path, profiles_copy) as base:
        rc, data, err = run_json([*base, "bios", HOST], capsys)
    assert rc == 1, err
    assert data["vendor"] == "dell" and data["bios"]["registry_read"] is True
    f = by_component(data)
    assert f["bios:LogicalProc"]["verdict"] == "pass"
    assert f["bios:LogicalProc"]["expected"] == "Enabled (smt: set in the profile)"
    assert (f["bios:NumaNodesPerSocket"]["verdict"], f["bios:NumaNodesPerSocket"]["observed"]) == (
        "fail",
        "1",
    )
    # The Settings object holds IommuSupport=Enabled: the finding says it waits for a reset.
    assert f["bios:IommuSupport"]["observed"] == "Disabled (pending: Enabled, applies at the next reset)"
    assert f["bios:SysProfile"]["verdict"] == "fail"
    assert all(x["evidence"] == ["redfish.bios"] for x in data["findings"])
    assert "3 BIOS setting(s) differ" in err
    assert data["bios"]["attributes"]["SetupPassword"] == "(hidden)"


def test_registry_refuses_unknown_names_bad_values_and_read_only_and_apply_sends_nothing(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bios(
        profiles_copy,
        {
            "attributes": {
                "LogicalProcessor": "Enabled",
                "ProcCores": "3",
                "SystemServiceTag": "X",
                "NumaNodesPerSocket": 4,
            }
        },
    )
    with dell(tmp_path, profiles_copy) as base:
        rc, data, _ = run_json([*base, "bios", HOST], capsys)
        valid = {f["component"]: f for f in data["findings"] if f["check"] == "bios_attribute_valid"}
        assert valid["bios:LogicalProcessor"]["observed"] == "not in BiosAttributeRegistry.v1_0_0"
        assert valid["bios:ProcCores"]["expected"] == "one of All, 1, 2, 4, 8"
        assert valid["bios:SystemServiceTag"]["observed"] == "read-only in BiosAttributeRegistry.v1_0_0"
        assert "bios:NumaNodesPerSocket" not in valid  # 4 is the enumeration's "4"
        assert rc == 1

        rc, _, err = cli([*base, "bios", HOST, "--apply"], capsys)
    assert rc == 2
    assert "bios --apply refused, nothing was sent" in err and "bios:ProcCores: expected one of All" in err
    log = (tmp_path / "static.log").read_text()
    assert "PATCH" not in log and "ComputerSystem.Reset" not in log


def test_unknown_vendor_leaves_common_settings_inconclusive(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = dell_tree()
    tree[SYSTEM]["Manufacturer"] = "Contoso"
    set_bios(profiles_copy, {"smt": True})
    with dell(tmp_path, profiles_copy, tree) as base:
        rc, data, _ = run_json([*base, "bios", HOST], capsys)
    assert rc == 0  # nothing failed; nothing passed either
    (f,) = data["findings"]
    assert (f["component"], f["verdict"]) == ("bios:smt", "inconclusive")
    assert "set bios.vendor" in f["observed"]


def test_vendor_override_and_missing_attribute_and_no_bios_resource(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = dell_tree()
    tree[SYSTEM]["Manufacturer"] = "Contoso"
    del tree[SYSTEM + "/Bios"]["Attributes"]["MmioAbove4Gb"]
    set_bios(profiles_copy, {"vendor": "dell", "above_4g_decoding": True, "smt": True})
    with dell(tmp_path, profiles_copy, tree) as base:
        rc, data, _ = run_json([*base, "bios", HOST], capsys)
        f = by_component(data)
        assert f["bios:LogicalProc"]["verdict"] == "pass"
        assert (f["bios:MmioAbove4Gb"]["verdict"], f["bios:MmioAbove4Gb"]["observed"]) == (
            "inconclusive",
            "not reported by the BMC",
        )
    no_bios = dell_tree()
    del no_bios[SYSTEM]["Bios"]
    with dell(tmp_path / "b", profiles_copy, no_bios) as base:
        rc, data, _ = run_json([*base, "bios", HOST], capsys)
    assert rc == 0 and data["bios"] is None
    assert [(f["component"], f["verdict"]) for f in data["findings"]] == [("bios", "inconclusive")]
    assert data["findings"][0]["observed"] == "the BMC exposes no Bios resource for this system"


# -- sushy-emulator: its own BIOS routes, --apply, reset, read back --------------------------------


def test_apply_patches_settings_resets_and_reads_back(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bios(profiles_copy, {"attributes": {"ProcTurboMode": "Disabled", "QuietBoot": False}})
    with bios_emulator(tmp_path, NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        rc, before, _ = run_json([*base, "bios", HOST], capsys)
        assert rc == 1
        assert before["bios"]["registry"] == "BiosAttributeRegistryP89.v1_0_0"
        assert before["bios"]["registry_read"] is True
        assert before["bios"]["attributes"]["SysPassword"] == "(hidden)"
        assert {f["component"]: f["observed"] for f in before["findings"]} == {
            "bios:ProcTurboMode": "Enabled",
            "bios:QuietBoot": "true",
        }

        rc, applied, err = run_json([*base, "bios", HOST, "--apply"], capsys)
        assert rc == 0, err
        assert applied["changes"] == {"ProcTurboMode": "Disabled", "QuietBoot": False}
        assert applied["power"] == ["On", "ForceOff"]  # it was off: on (POST takes them), off again
        assert {f["component"]: (f["verdict"], f["observed"]) for f in applied["findings"]} == {
            "bios:ProcTurboMode": ("pass", "Disabled"),
            "bios:QuietBoot": ("pass", "False"),  # the libvirt driver keeps str(value)
        }
        state = json.loads((tmp_path / "bios.json").read_text())[NODE.uuid]
        assert state["current"]["ProcTurboMode"] == "Disabled" and not state["pending"]

        rc, again, _ = run_json([*base, "bios", HOST, "--apply"], capsys)
        assert (rc, again["changes"], again["power"]) == (0, {}, [])  # nothing differs: no reset
    log = emu.log.read_text()
    assert log.count("PATCH /redfish/v1/Systems/") == 1
    assert "Canary-pw-5d1e" not in log + json.dumps(applied)


def test_apply_refuses_a_read_only_attribute_named_by_the_emulators_registry(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bios(profiles_copy, {"attributes": {"NumCores": "12", "NicBoot1": "Pxe"}})
    with bios_emulator(tmp_path, NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        rc, _, err = cli([*base, "bios", HOST, "--apply"], capsys)
    assert rc == 2
    assert "bios:NumCores: expected a writable attribute, got read-only in BiosAttributeRegistryP89" in err
    assert "bios:NicBoot1: expected one of NetworkBoot, Disabled, got Pxe" in err
    assert "PATCH" not in emu.log.read_text()


def test_apply_is_refused_while_the_host_burns_in_or_is_held(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provision.store.state import HostState, StateStore

    set_bios(profiles_copy, {"attributes": {"ProcTurboMode": "Disabled"}})
    with bios_emulator(tmp_path, NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        with StateStore.open(tmp_path / "state") as store:
            store.set_host_state(HOST, HostState.burning_in, reason="test")
        rc, _, err = cli([*base, "bios", HOST, "--apply"], capsys)
        assert (rc, err) == (2, f"provision: {HOST}: a burn-in is running: no BIOS change until it ends\n")
        with StateStore.open(tmp_path / "state") as store:
            store.set_host_state(HOST, HostState.inspected, reason="test")
            with store.host_lock(HOST):  # as a `provision host` run holds it
                rc, _, err = cli([*base, "bios", HOST, "--apply"], capsys)
        assert rc == 2 and HOST in err
    assert "PATCH" not in emu.log.read_text()


def test_lenovo_style_bios_without_a_settings_object_and_a_registry_lacking_nps4(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = dell_tree()
    reg = "/redfish/v1/Registries/BiosRegistry/BiosAttributeRegistry.v1_0_0"
    tree[SYSTEM]["Manufacturer"] = "Lenovo"
    bios = tree[SYSTEM + "/Bios"]
    del bios["@Redfish.Settings"]  # XCC-style: the Bios resource itself is PATCHed
    bios["Attributes"] = {"Processors_SMTMode": "Disabled", "Memory_NUMANodesperSocket": "NPS1"}
    tree[reg]["RegistryEntries"]["Attributes"] = [
        {"AttributeName": name, "Type": "Enumeration", "Value": [{"ValueName": v} for v in values]}
        for name, values in (
            ("Processors_SMTMode", ["Enabled", "Disabled"]),
            ("Memory_NUMANodesperSocket", ["NPS0", "NPS1", "NPS2"]),
        )
    ]
    set_bios(profiles_copy, {"smt": True, "nps": 4})
    with dell(tmp_path, profiles_copy, tree) as base:
        rc, data, _ = run_json([*base, "bios", HOST], capsys)
    assert rc == 1 and data["vendor"] == "lenovo"
    assert data["bios"]["settings_path"] == data["bios"]["path"] == SYSTEM + "/Bios"
    got = {(f["check"], f["component"]): (f["verdict"], f["observed"]) for f in data["findings"]}
    assert got == {
        ("bios_attribute_valid", "bios:Memory_NUMANodesperSocket"): (
            "fail",
            "NPS4 (not a value of BiosAttributeRegistry.v1_0_0)",
        ),
        ("bios_setting", "bios:Processors_SMTMode"): ("fail", "Disabled"),
        ("bios_setting", "bios:Memory_NUMANodesperSocket"): ("fail", "NPS1"),
    }
