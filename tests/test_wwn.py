"""One WWN form for every comparison: hosts.yaml writes "0x5002...", Redfish DurableName "5002...",
lsblk "0x5002..." or "eui.0025...", udev "wwn-0x5002...". The same drive must match in each place."""

from __future__ import annotations

import pytest

from burnin.hardware import Drive, HardwareInventory, normalize_wwn
from burnin.schema import Verdict
from provision.acceptance.inspection import check_drives
from provision.acceptance.validation.crosscheck import crosscheck
from provision.install.spec import by_id_name
from provision.model.hosts import DiskId
from tests.support.bundle import catalog

HOST = "inferno-host-compute-1"  # hosts.yaml names its boot pair by "0x..." WWN


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("0x5002538e40c1a201", "5002538e40c1a201"),  # hosts.yaml, lsblk WWN column
        ("5002538E40C1A201", "5002538e40c1a201"),  # Redfish DurableName (NAA), upper case
        ("naa.5002538e40c1a201", "5002538e40c1a201"),  # VMware / some BMCs
        ("wwn-0x5002538e40c1a201", "5002538e40c1a201"),  # udev by-id name
        ("50:02:53:8e:40:c1:a2:01", "5002538e40c1a201"),  # colon-separated
        (" eui.0025388b91b0a3c1\n", "0025388b91b0a3c1"),  # sysfs wwid of an NVMe namespace
        ("nvme.144d-5333-00000001", "144d-5333-00000001"),  # NVMe without EUI-64/NGUID
        ("", None),
        (None, None),
        ("0x", None),
    ],
)
def test_normalize_wwn(raw: str | None, want: str | None) -> None:
    assert normalize_wwn(raw) == want


def _bmc_boot_pair(serial: bool = False) -> list[Drive]:
    """The boot SSDs as a BMC reports them: DurableName upper case without the 0x."""
    host = catalog().host(HOST)
    capacity = catalog().profile_of(host).storage[0].capacity_bytes
    return [
        Drive(
            name=f"Disk.Bay.{i}",
            protocol="SATA",
            serial=d.serial if serial else None,
            wwn=(d.wwn or "").removeprefix("0x").upper(),
            capacity_bytes=capacity,
        )
        for i, d in enumerate(host.boot_disks)
    ]


def test_inspection_finds_the_listed_boot_pair_by_wwn_however_written() -> None:
    host = catalog().host(HOST)
    assert all(d.wwn and d.wwn.startswith("0x") for d in host.boot_disks)
    inv = HardwareInventory(source="redfish", collected_at=0.0, drives=_bmc_boot_pair())
    found = check_drives(catalog().profile_of(host), inv, host)
    count = next(f for f in found if f.check == "drive_count" and f.component == "storage:boot")
    assert (count.verdict, count.observed) == (Verdict.PASS, "2 sata drives")


def test_inspection_does_not_match_a_wwn_only_listing_to_a_drive_without_serial() -> None:
    # Both sides without a serial once compared None == None and matched every drive.
    host = catalog().host(HOST)
    listed = host.model_copy(update={"boot_disks": (DiskId(wwn="0x5002538e40c1ffff"),) * 2})
    inv = HardwareInventory(source="redfish", collected_at=0.0, drives=_bmc_boot_pair())
    found = check_drives(catalog().profile_of(host), inv, listed)
    count = next(f for f in found if f.check == "drive_count" and f.component == "storage:boot")
    assert (count.verdict, count.observed) == (Verdict.FAIL, "0 sata drives")


def test_crosscheck_matches_bmc_and_os_views_of_a_drive_by_wwn() -> None:
    pre = HardwareInventory(source="redfish", collected_at=0.0, drives=_bmc_boot_pair())
    inos = HardwareInventory(
        source="os",
        collected_at=0.0,
        drives=[
            Drive(name=f"sd{c}", wwn=d.wwn and "0x" + d.wwn.lower())
            for c, d in zip("ab", pre.drives, strict=True)
        ],
    )
    found = crosscheck(pre, inos)
    drive = [f for f in found if f.check.startswith("drive_")]
    assert drive and all(f.verdict is Verdict.PASS for f in drive), drive


def test_udev_name_is_the_same_for_every_spelling() -> None:
    names = {by_id_name(DiskId(wwn=w), None) for w in ("0x5002538E40C1A201", "naa.5002538e40c1a201")}
    assert names == {"disk/by-id/wwn-0x5002538e40c1a201"}
    with pytest.raises(ValueError, match="expected a WWN of 16 or 32 hex digits"):
        by_id_name(DiskId(wwn="eui.0025388b91b0"), None)
