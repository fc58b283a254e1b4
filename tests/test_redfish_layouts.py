"""Vendors' Redfish layouts (hand-written trees in tests/fixtures/redfish/, after Dell iDRAC9, HPE iLO5,
Lenovo XCC and a Supermicro HGX host): every part read once, from wherever the BMC keeps it, with
placeholders unknown, empty bays skipped, error bodies refused; each layout also through sushy-static."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from burnin.hardware import HardwareInventory, known
from burnin.schema import Verdict
from provision.acceptance.inspection import (
    check_drives,
    check_gpus,
    check_memory,
    dimm_size_ok,
    inspect_findings,
)
from provision.acceptance.validation.crosscheck import crosscheck
from provision.bmc.credentials import Credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import connect
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from tests.conftest import PROFILES
from tests.support.mockup import write_tree
from tests.support.redfish_rig import static

FIXTURES = Path(__file__).parent / "fixtures" / "redfish"
LAYOUTS = ["dell-idrac9", "hpe-ilo5", "lenovo-xcc", "supermicro-hgx"]
CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)


def _tree(name: str) -> dict[str, Any]:
    tree: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return tree


def _inventory(name: str) -> HardwareInventory:
    tree = _tree(name)
    return collect_inventory(lambda path: tree.get(path.rstrip("/")))


def _by_id(inv: HardwareInventory) -> dict[str, Any]:
    return {f.id: f for f in inspect_findings(PROFILE, inv, HOST)}


def test_hgx_gpus_on_a_baseboard_system_are_read_through_the_chassis_tree() -> None:
    """The host chassis links only the host System; the GPUs sit on a baseboard System and Chassis
    reached down Links.Contains and Links.Processors (and listed by the baseboard System too)."""
    inv = _inventory("supermicro-hgx")
    assert [(g.index, g.name, g.slot, g.memory_mib) for g in inv.gpus] == [
        ("GPU_SXM_1", "NVIDIA H100 80GB HBM3", "SXM1", 81559),
        ("GPU_SXM_2", "NVIDIA H100 80GB HBM3", "SXM2", 81559),
    ]
    assert [c.socket for c in inv.cpus] == ["CPU1", "CPU2"] and inv.logical_cpus == 224
    roles = {(e.role, e.path) for e in inv.enclosures}
    assert ("host", "/redfish/v1/Systems/1") in roles
    assert ("baseboard", "/redfish/v1/Systems/HGX_Baseboard_0") in roles
    assert ("chassis", "/redfish/v1/Chassis/HGX_Chassis_0") in roles
    assert "systems" not in inv.gaps
    gpu_count = next(f for f in check_gpus(PROFILE, inv) if f.check == "gpu_count")
    assert gpu_count.observed == "2"  # read, and counted once although linked twice


def test_an_hgx_baseboard_managed_by_its_own_controller_is_still_the_hosts() -> None:
    """NVIDIA's HGX baseboard has a manager of its own (the HMC), so the host BMC's manager does not
    list it in ManagerForServers; it is still the host's hardware, reached down the host's chassis."""
    tree = _tree("supermicro-hgx")
    hmc, board = "/redfish/v1/Managers/HGX_BMC_0", "/redfish/v1/Systems/HGX_Baseboard_0"
    tree["/redfish/v1/Managers/1"]["Links"] = {"ManagerForServers": [{"@odata.id": "/redfish/v1/Systems/1"}]}
    tree[hmc] = {"@odata.id": hmc, "Id": "HGX_BMC_0", "Links": {"ManagerForServers": [{"@odata.id": board}]}}
    tree["/redfish/v1/Managers"]["Members"].append({"@odata.id": hmc})
    tree[board]["Links"] = {**tree[board]["Links"], "ManagedBy": [{"@odata.id": hmc}]}
    inv = collect_inventory(lambda p: tree.get(p.rstrip("/")), "/redfish/v1/Systems/1")
    assert [g.index for g in inv.gpus] == ["GPU_SXM_1", "GPU_SXM_2"]
    assert ("baseboard", board) in {(e.role, e.path) for e in inv.enclosures}
    assert "systems" not in inv.gaps


def test_a_sibling_baseboard_system_no_chassis_links_is_read() -> None:
    tree = _tree("supermicro-hgx")
    tree["/redfish/v1/Chassis/1"]["Links"].pop("Contains")
    inv = collect_inventory(lambda path: tree.get(path.rstrip("/")))
    assert len(inv.gpus) == 2 and "systems" not in inv.gaps


def test_gpus_only_a_baseboard_chassis_links_are_read() -> None:
    """No baseboard System at all: the GPUs are reached through the chassis' Links.Processors."""
    tree = _tree("supermicro-hgx")
    tree["/redfish/v1/Systems"]["Members"] = [{"@odata.id": "/redfish/v1/Systems/1"}]
    tree["/redfish/v1/Chassis/HGX_Chassis_0"]["Links"].pop("ComputerSystems")
    inv = collect_inventory(lambda path: tree.get(path.rstrip("/")))
    assert [g.index for g in inv.gpus] == ["GPU_SXM_1", "GPU_SXM_2"]
    assert not any(e.role == "baseboard" for e in inv.enclosures)


def test_dell_pcie_listed_under_chassis_and_system_is_one_gpu() -> None:
    inv = _inventory("dell-idrac9")
    assert [(g.index, g.name, g.slot, g.pci_device_id) for g in inv.gpus] == [
        ("59-0", "GH100 [H100 PCIe]", "Slot 7", "0x2331")
    ]
    assert len(inv.pcie) == 1


def test_dell_nvme_drive_reported_as_pcie_is_nvme() -> None:
    inv = _inventory("dell-idrac9")
    assert [d.protocol for d in inv.drives] == ["NVMe"]
    scratch = next(f for f in check_drives(PROFILE, inv, None) if f.id == "drive_count:storage:scratch")
    assert scratch.observed == "1 nvme drives"  # was 0: a "PCIe" drive counted as no NVMe


def test_dell_dimms_without_memory_location_are_a_gap_and_vendor_mib_passes() -> None:
    inv = _inventory("dell-idrac9")
    assert {d.size_mib for d in inv.dimms} == {31250}  # 32 GB as iDRAC computes it
    found = {f.id: f for f in check_memory(PROFILE, inv)}
    assert {f.verdict for k, f in found.items() if k.startswith("dimm_size:")} == {Verdict.PASS}
    gap = found["dimm_count_socket:memory:socket unknown"]
    assert gap.verdict is Verdict.INCONCLUSIVE
    assert gap.observed.startswith("2 DIMMs without a socket (no MemoryLocation): DIMM.Socket.A1")


def test_dimm_size_tolerance_absorbs_vendor_arithmetic_but_not_a_wrong_size() -> None:
    for got in (32768, 32000, 31250, 30518):
        assert dimm_size_ok(32768, got)
    for got in (24576, 49152, 16384):
        assert not dimm_size_ok(32768, got)


def test_placeholders_are_unknown_and_never_matched() -> None:
    dell, hpe = _inventory("dell-idrac9"), _inventory("hpe-ilo5")
    assert [n.mac for n in dell.nics] == ["b0:7b:25:de:1a:10", None]  # "not available", then zeros
    assert hpe.dimms[0].serial is None and hpe.dimms[2].part_number is None  # zeros; "N/A"
    for text in ("N/A", "not available", "00000000000000", "00:00:00:00:00:00", "", "  ", "Not Specified"):
        assert known(text) is None, text
    assert known(" S4CNNE0N100001 ") == "S4CNNE0N100001"
    # Two DIMMs whose serials are both zeros are two unknown identities, not one match.
    twin = HardwareInventory(source="os", collected_at=0.0, dimms=list(hpe.dimms))
    agree = [f for f in crosscheck(hpe, twin) if f.check.startswith("dimm")]
    assert all("0000" not in f.id for f in agree)


def test_hpe_empty_bay_duplicate_link_missing_id_and_error_body() -> None:
    inv = _inventory("hpe-ilo5")
    # Drives/0 linked twice, 1 an empty bay, 2 without Id, 3 failed, 4 an error body served with 200.
    assert [(d.name, d.serial) for d in inv.drives] == [
        ("0", "S4CNNE0N100001"),
        ("2", "S4CNNE0N100002"),
        ("3", "S4CNNE0N100003"),
    ]
    assert "Drives/4: the BMC answered with an error body" in inv.gaps["drives"]
    boot = next(f for f in check_drives(PROFILE, inv, None) if f.id == "drive_count:storage:boot")
    assert boot.verdict is Verdict.INCONCLUSIVE and "error body" in boot.observed
    ids = [f.id for f in inspect_findings(PROFILE, inv, HOST)]
    assert len(ids) == len(set(ids)) and not any("None" in i for i in ids)


def test_a_404_member_is_a_gap_that_makes_the_count_inconclusive() -> None:
    tree = _tree("supermicro-hgx")
    del tree["/redfish/v1/Systems/1/Memory/2"]
    inv = collect_inventory(lambda path: tree.get(path.rstrip("/")))
    assert "Memory/2: the BMC answered 404" in inv.gaps["memory"]
    count = next(f for f in check_memory(PROFILE, inv) if f.id == "dimm_count:memory")
    assert count.verdict is Verdict.INCONCLUSIVE and "404" in count.observed


def test_lenovo_riser_chassis_gpu_name_from_its_pcie_device_and_repeated_drive_ids() -> None:
    inv = _inventory("lenovo-xcc")
    assert [(g.index, g.name, g.slot, g.pci_device_id) for g in inv.gpus] == [
        ("GPU1", "NVIDIA L40S", "Slot 5", "0x26b9")
    ]
    assert [d.name for d in inv.drives] == ["Disk.0", "RAID_Slot2/Disk.0"]
    ids = [f.id for f in inspect_findings(PROFILE, inv, HOST)]
    assert len(ids) == len(set(ids))


def test_one_drive_listed_32_times_is_one_drive() -> None:
    tree = _tree("supermicro-hgx")
    st = tree["/redfish/v1/Systems/1/Storage/NVMeSSD"]
    st["Drives"] = st["Drives"] * 32
    inv = collect_inventory(lambda path: tree.get(path.rstrip("/")))
    assert len(inv.drives) == 1


@pytest.mark.parametrize("name", LAYOUTS)
def test_each_layout_reads_the_same_through_sushy_static(name: str, tmp_path: Path) -> None:
    expected = _inventory(name)
    mockup = write_tree(_tree(name), tmp_path / "mockup")
    with static(mockup, tmp_path / "static.log") as svc:
        bmc = Bmc(url=svc.url, credentials="env:UNUSED", retry_delay_s=0.05)
        with connect(bmc, credentials=Credentials("admin", "secret")) as client:
            got = collect_inventory(client.try_json)
    got.collected_at = expected.collected_at
    assert got.to_dict() == expected.to_dict()
    assert got.gpus or name == "hpe-ilo5"
