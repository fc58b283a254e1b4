"""The `bios:` block, the per-vendor map, and the pure BIOS findings (current vs desired, the
registry check, the in-OS cross-checks), as tables."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from burnin.hardware import Cpu, HardwareInventory
from burnin.schema import Verdict
from provision.acceptance.bios import (
    changes_needed,
    check_in_os,
    check_registry,
    check_settings,
    redacted,
)
from provision.model.bios import (
    BiosSettings,
    RegistryEntry,
    Vendor,
    desired_attributes,
    same_value,
    vendor_of,
)
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import PROFILES

ALL = BiosSettings(
    smt=True,
    nps=4,
    determinism="performance",
    iommu=True,
    above_4g_decoding=True,
    resizable_bar=True,
    power_profile="performance",
)


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        (Vendor.dell, {"LogicalProc": "Enabled", "NumaNodesPerSocket": "4", "IommuSupport": "Enabled"}),
        (Vendor.hpe, {"ProcSMT": "Enabled", "NumaMemoryDomainsPerSocket": "FourMemoryDomainsPerSocket"}),
        (Vendor.lenovo, {"Processors_SMTMode": "Enabled", "Memory_NUMANodesperSocket": "NPS4"}),
        (
            Vendor.supermicro,
            {"SMTControl": "Enabled", "NUMANodesPerSocket": "NPS4", "Above4GDecoding": "Enabled"},
        ),
        (
            Vendor.ami,
            {"CbsCmnCpuSmtCtrl": "Enable", "CbsDfCmnDramNps": "NPS4", "CbsCmnGnbNbIOMMU": "Enabled"},
        ),
    ],
)
def test_common_settings_map_to_each_vendors_names(vendor: Vendor, expected: dict[str, str]) -> None:
    desired = desired_attributes(ALL, vendor)
    assert desired.attributes.items() >= expected.items()
    assert len(desired.attributes) == 7 and not desired.unmapped
    assert desired.origin[next(iter(expected))] == "smt"


def test_vendor_attributes_win_and_unknown_vendor_or_value_is_unmapped() -> None:
    s = BiosSettings(smt=False, nps=0, attributes={"LogicalProc": "Enabled", "ProcCStates": "Disabled"})
    dell = desired_attributes(s, Vendor.dell)
    assert dell.attributes == {"LogicalProc": "Enabled", "NumaNodesPerSocket": "0", "ProcCStates": "Disabled"}
    assert dell.origin["LogicalProc"] == "attributes"
    hpe = desired_attributes(s, Vendor.hpe)  # HPE has no NPS0 domain setting
    assert hpe.unmapped == {"nps": "hpe has no value for nps=0"}
    none = desired_attributes(s, None)
    assert set(none.unmapped) == {"smt", "nps"} and set(none.attributes) == {"LogicalProc", "ProcCStates"}


@pytest.mark.parametrize(
    ("manufacturer", "vendor"),
    [
        ("Dell Inc.", Vendor.dell),
        ("HPE", Vendor.hpe),
        ("Hewlett Packard Enterprise", Vendor.hpe),
        ("Lenovo", Vendor.lenovo),
        ("Supermicro", Vendor.supermicro),
        ("ASRockRack", Vendor.ami),
        ("Sushy Emulator", None),
        (None, None),
    ],
)
def test_vendor_from_manufacturer(manufacturer: str | None, vendor: Vendor | None) -> None:
    assert vendor_of(manufacturer) is vendor
    assert vendor_of(manufacturer, Vendor.lenovo) is Vendor.lenovo


@pytest.mark.parametrize(
    ("desired", "current", "same"),
    [
        ("Enabled", "Enabled", True),
        ("Enabled", "enabled", False),  # enumerations are exact
        (True, "true", True),
        (False, "False", True),
        (True, False, False),
        (4, "4", True),
        ("4", 4, True),
        (4, None, False),
    ],
)
def test_same_value(desired: Any, current: Any, same: bool) -> None:
    assert same_value(desired, current) is same


REGISTRY = {
    "LogicalProc": RegistryEntry("LogicalProc", "Enumeration", ("Enabled", "Disabled")),
    "ProcCores": RegistryEntry("ProcCores", "Integer", lower=1, upper=64),
    "Tag": RegistryEntry("Tag", "String", read_only=True),
    "Quiet": RegistryEntry("Quiet", "Boolean"),
}


@pytest.mark.parametrize(
    ("attributes", "expected", "observed"),
    [
        ({"LogicalProc": "On"}, "one of Enabled, Disabled", "On (not a value of R1)"),
        ({"ProcCores": 65}, "1<=x<=64", "65 (out of the registry's range)"),
        ({"ProcCores": "8"}, "an integer", "8 (the registry types it Integer)"),
        ({"Tag": "x"}, "a writable attribute", "read-only in R1"),
        ({"Quiet": "yes"}, "true or false", "yes (the registry types it Boolean)"),
        ({"Nope": 1}, "an attribute the BMC's registry lists", "not in R1"),
    ],
)
def test_registry_refusals_say_the_rule(attributes: dict[str, Any], expected: str, observed: str) -> None:
    desired = desired_attributes(BiosSettings(attributes=attributes), None)
    (f,) = check_registry(desired, REGISTRY, "R1")
    assert (f.check, f.verdict, f.expected, f.observed) == (
        "bios_attribute_valid",
        Verdict.FAIL,
        expected,
        observed,
    )


def test_registry_accepts_valid_values_and_no_registry_checks_nothing() -> None:
    desired = desired_attributes(
        BiosSettings(attributes={"LogicalProc": "Enabled", "ProcCores": 8, "Quiet": True}), None
    )
    assert check_registry(desired, REGISTRY, "R1") == []
    assert check_registry(desired_attributes(BiosSettings(attributes={"Nope": 1}), None), None, None) == []


def test_settings_pass_fail_inconclusive_and_passwords_never_shown() -> None:
    desired = desired_attributes(
        BiosSettings(smt=True, attributes={"Missing": "x", "SetupPassword": "Canary-9"}), Vendor.dell
    )
    current = {"LogicalProc": "Disabled", "SetupPassword": "Canary-9"}
    found = {f.component: f for f in check_settings(desired, current, {"LogicalProc": "Enabled"})}
    assert found["bios:LogicalProc"].verdict is Verdict.FAIL
    assert found["bios:LogicalProc"].observed == "Disabled (pending: Enabled, applies at the next reset)"
    assert found["bios:Missing"].verdict is Verdict.INCONCLUSIVE
    assert found["bios:SetupPassword"].verdict is Verdict.INCONCLUSIVE
    assert "Canary-9" not in repr(found)
    assert redacted(current) == {"LogicalProc": "Disabled", "SetupPassword": "(hidden)"}
    assert changes_needed(desired, current) == {"LogicalProc": "Enabled", "Missing": "x"}
    (null,) = check_settings(desired_attributes(BiosSettings(attributes={"X": "y"}), None), {"X": None})
    assert (null.verdict, null.observed) == (Verdict.INCONCLUSIVE, "not reported by the BMC")


def _os(threads: int | None, numa: int | None, groups: int | None, sockets: int = 2) -> HardwareInventory:
    inv = HardwareInventory(source="os", collected_at=0.0, numa_nodes=numa, iommu_groups=groups)
    inv.cpus = [
        Cpu(socket=str(s), cores=64, threads=64 * threads if threads else None) for s in range(sockets)
    ]
    return inv


@pytest.mark.parametrize(
    ("settings", "inv", "verdicts"),
    [
        (BiosSettings(smt=True, nps=4, iommu=True), _os(2, 8, 120), ["pass", "pass", "pass"]),
        (BiosSettings(smt=True, nps=4, iommu=True), _os(1, 2, 0), ["fail", "fail", "fail"]),
        (BiosSettings(smt=False, nps=0), _os(1, 1, None), ["pass", "pass"]),
        (BiosSettings(smt=True, nps=2, iommu=True), _os(None, None, None), ["inconclusive"] * 3),
        (BiosSettings(iommu=False), _os(2, 2, 0), []),  # only an enabled IOMMU is checked
    ],
)
def test_in_os_crosschecks(settings: BiosSettings, inv: HardwareInventory, verdicts: list[str]) -> None:
    found = check_in_os(settings, 2, inv)
    assert [f.verdict.value for f in found] == verdicts
    assert all(f.source == "os" and f.evidence for f in found)


def test_in_os_messages() -> None:
    smt, nps, iommu = check_in_os(BiosSettings(smt=True, nps=4, iommu=True), 2, _os(1, 2, 0))
    assert (smt.expected, smt.observed) == ("2 thread(s) per core (smt: true)", "1 thread(s) per core")
    assert (nps.expected, nps.observed) == ("8 NUMA node(s) (nps: 4 x 2 socket(s))", "2 NUMA node(s)")
    assert iommu.observed == "0 IOMMU group(s) in /sys/kernel/iommu_groups"
    assert check_in_os(None, 2, _os(1, 1, 0)) == []


def _load(tmp_path: Path, bios: Any) -> None:
    root = tmp_path / "profiles"
    shutil.copytree(PROFILES, root)
    path = root / "circle-1-limbo.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["bios"] = bios
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    load_catalog(root)


@pytest.mark.parametrize(
    ("bios", "message"),
    [
        ({"smt": True, "nsp": 4}, "bios.nsp: expected only known fields, got unknown field"),
        ({"nps": 3}, "bios.nps: expected one of 0, 1, 2 or 4, got 3"),
        ({"vendor": "acme"}, "bios.vendor: expected one of"),
    ],
)
def test_profile_bios_block_typos_are_errors(tmp_path: Path, bios: Any, message: str) -> None:
    with pytest.raises(BadInput) as exc:
        _load(tmp_path, bios)
    assert message in str(exc.value) and "circle-1-limbo.yaml:" in str(exc.value)


def test_profile_bios_block_loads(tmp_path: Path) -> None:
    _load(tmp_path, {"smt": True, "nps": 2, "attributes": {"ProcCStates": "Disabled", "ProcCores": 8}})


def test_agent_counts_iommu_groups_and_says_none_where_sysfs_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from burnin import inventory
    from burnin.tools import ToolRunner
    from tests.conftest import require_tool

    require_tool("lscpu")
    runner = ToolRunner(tmp_path / "ev", lambda *a, **k: None, threading.Event())
    for n in ("0", "1", "17"):
        (tmp_path / "sys" / "kernel" / "iommu_groups" / n).mkdir(parents=True)
    monkeypatch.setattr(inventory, "SYS", tmp_path / "sys")
    inv = HardwareInventory(source="os", collected_at=0.0)
    inventory._cpu(inv, runner)  # real lscpu; the groups from the sysfs tree above
    assert inv.iommu_groups == 3 and inv.numa_nodes
    monkeypatch.setattr(inventory, "SYS", tmp_path / "absent")
    inventory._cpu(inv, runner)
    assert inv.iommu_groups is None
