"""The hardware diff of `provision reinstall`: exactly the swapped parts, and boot-disk re-targeting."""

from __future__ import annotations

from dataclasses import replace

from burnin.hardware import (
    Dimm,
    Drive,
    Firmware,
    Gpu,
    HardwareInventory,
    Nic,
    PartStatus,
    Psu,
    SystemInfo,
)
from provision.acceptance.inventory_diff import (
    ChangeKind,
    diff_inventories,
    retarget_boot_disks,
    suites_to_weigh,
)
from provision.model.hosts import DiskId


def inventory() -> HardwareInventory:
    return HardwareInventory(
        source="redfish",
        collected_at=0.0,
        system=SystemInfo(serial="S1", bios_version="1.2"),
        dimms=[Dimm(f"DIMM_A{i}", serial=f"D{i}", size_mib=65536) for i in range(4)],
        gpus=[Gpu(str(i), serial=f"G{i}", name="NVIDIA L40S") for i in range(2)],
        drives=[
            Drive("Disk.Bay.0", protocol="SATA", serial="SATA0", model="MZ7L3960"),
            Drive("Disk.Bay.1", protocol="SATA", serial="SATA1", model="MZ7L3960"),
            Drive("NVMe.0", protocol="NVMe", serial="NV0"),
        ],
        nics=[Nic("eth0", mac="3c:ec:ef:20:01:10")],
        firmware=[Firmware("BMC", "1.0")],
        psus=[Psu(f"PSU{i}", serial=f"P{i}", capacity_w=2700.0, health="OK") for i in (1, 2)],
        health=[
            PartStatus("dimm:DIMM_A1", state="Enabled", health="OK"),
            PartStatus("psu:PSU1", health="OK"),
        ],
    )


def test_reinstall_diff_lists_exactly_a_swapped_dimm_and_gpu() -> None:
    before = inventory()
    after = inventory()
    after.dimms[2] = replace(after.dimms[2], serial="D2-NEW")
    after.gpus[1] = replace(after.gpus[1], serial="G1-NEW")
    changes = diff_inventories(before, after)
    assert [c.describe() for c in changes] == [
        "dimm DIMM_A2: replaced (serial D2 -> D2-NEW)",
        "gpu 1: replaced (serial G1 -> G1-NEW)",
    ]
    assert suites_to_weigh(changes, after) == ["memory", "gpu"]


def test_reinstall_diff_sees_firmware_nic_and_missing_parts_but_not_unreadable_fields() -> None:
    before = inventory()
    after = inventory()
    after.firmware = [Firmware("BMC", "1.1")]
    after.nics = [Nic("eth0", mac="3c:ec:ef:20:01:99")]
    after.dimms = after.dimms[:3]
    after.system = SystemInfo(serial="S1", bios_version=None)  # the BMC stopped exposing it: no change
    kinds = {(c.part, c.where): c.kind for c in diff_inventories(before, after)}
    assert kinds == {
        ("dimm", "DIMM_A3"): ChangeKind.removed,
        ("nic", "eth0"): ChangeKind.replaced,
        ("firmware", "BMC"): ChangeKind.changed,
    }
    assert diff_inventories(before, inventory()) == []


def test_reinstall_retargets_a_replaced_boot_ssd_by_its_new_serial() -> None:
    before = inventory()
    after = inventory()
    after.drives[1] = replace(after.drives[1], serial="SATA1-NEW")
    changes = diff_inventories(before, after)
    assert suites_to_weigh(changes, after) == ["boot_disks"]
    pinned = (DiskId(serial="SATA0"), DiskId(serial="SATA1"))
    disks, moved = retarget_boot_disks(pinned, changes, after)
    assert disks == (DiskId(serial="SATA0"), DiskId(serial="SATA1-NEW", model="MZ7L3960"))
    assert moved == ["boot disk in bay Disk.Bay.1: SATA1 -> SATA1-NEW"]


def test_reinstall_retargets_a_boot_ssd_pinned_by_wwn_in_another_spelling() -> None:
    before = inventory()
    before.drives[1] = replace(before.drives[1], serial=None, wwn="5002538E40C1A202")  # as a BMC shows it
    after = inventory()
    after.drives[1] = replace(after.drives[1], serial="SATA1-NEW", wwn="5002538e40c1a299")
    changes = diff_inventories(before, after)
    pinned = (DiskId(serial="SATA0"), DiskId(wwn="0x5002538e40c1a202"))  # as hosts.yaml writes it
    disks, moved = retarget_boot_disks(pinned, changes, after)
    assert disks[0] == DiskId(serial="SATA0")
    assert disks[1].serial == "SATA1-NEW"
    assert len(moved) == 1


def test_reinstall_diff_names_a_swapped_psu_and_a_part_whose_health_changed() -> None:
    before = inventory()
    after = inventory()
    after.psus[1] = replace(after.psus[1], serial="P2-NEW", capacity_w=2000.0)
    after.psus[0] = replace(after.psus[0], health="Critical")
    after.health[0] = replace(after.health[0], health="Warning")
    after.health[1] = replace(after.health[1], health="Critical", state="StandbyOffline")  # said by psu
    after.health.append(PartStatus("system:1", state="Enabled"))
    before.health.append(PartStatus("system:1", state="StandbyOffline"))  # powered on: no news
    after.health.append(PartStatus("fan:FAN1", health="OK"))  # newly read: its part's kind says so
    changes = diff_inventories(before, after)
    assert [c.describe() for c in changes] == [
        "psu PSU1: changed (health OK -> Critical)",
        "psu PSU2: replaced (serial P2 -> P2-NEW; capacity_w 2700.0 -> 2000.0)",
        "health dimm:DIMM_A1: changed (health OK -> Warning)",
    ]
    assert suites_to_weigh(changes, after) == []
    after.psus.pop()
    assert diff_inventories(before, after)[1].describe() == "psu PSU2: removed"
    after.health[0] = replace(after.health[0], state="UnavailableOffline")
    assert diff_inventories(before, after)[-1].describe() == (
        "health dimm:DIMM_A1: changed (state Enabled -> UnavailableOffline; health OK -> Warning)"
    )
