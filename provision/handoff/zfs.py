"""The ZFS LocalPV pool's plan on the scratch NVMe: the devices (by WWN/serial, never the boot mirror),
the exact commands, and the refusals that stop it.

Pure. The commands run on the host over SSH.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from burnin.hardware import normalize_wwn
from provision.model.hosts import Host
from provision.model.profile import DriveClass, DriveRole, Profile, ZfsPool

# The fewest drives each layout takes.
_LAYOUT_MINIMUM = {"stripe": 1, "mirror": 2, "raidz1": 3}


@dataclass
class ZfsPlan:
    pool: str | None
    devices: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


_BY_ID = re.compile(r"/dev/disk/by-id/[A-Za-z0-9][A-Za-z0-9._:+-]{0,200}")


def _ident(d: dict[str, Any]) -> set[str]:
    """The drive's identities, comparable across hosts.yaml, lsblk and Redfish spellings."""
    ids: set[str] = set()
    serial = str(d.get("serial") or "").strip().upper()
    if serial:
        ids.add(f"serial:{serial}")
    wwn = normalize_wwn(str(d["wwn"])) if d.get("wwn") else None
    if wwn:
        ids.add(f"wwn:{wwn}")
    return ids


def _by_id(d: dict[str, Any]) -> str:
    """The udev by-id name: stable across reboots, unlike nvmeXnY."""
    wwn = str(d.get("wwn") or "")
    if wwn.startswith(("eui.", "nguid.", "uuid.")):
        return f"/dev/disk/by-id/nvme-{wwn}"
    model = re.sub(r"\s+", "_", str(d.get("model") or "").strip())
    return f"/dev/disk/by-id/nvme-{model}_{d.get('serial')}"


def _drive_refusals(
    drives: list[dict[str, Any]], cls: DriveClass, host: Host, inv: dict[str, Any], record: dict[str, Any]
) -> list[str]:
    """Why each NVMe drive of the accepted run may not join the pool, then which scratch_disks are absent."""
    boot_ids = {i for d in host.boot_disks for i in _ident(d.model_dump())}
    boot_ids |= {
        i for d in inv.get("drives", []) if str(d.get("protocol", "")).upper() == "SATA" for i in _ident(d)
    }
    allowed = [_ident(d.model_dump()) for d in host.scratch_disks]
    failed = {f["component"] for f in record["findings"] if f["verdict"] == "fail"}
    out: list[str] = []
    for d in drives:
        ids, name = _ident(d), f"{d.get('name')} (serial {d.get('serial')})"
        if not ids:
            out.append(f"{name}: no serial or WWN to address it by")
        if ids & boot_ids:
            out.append(f"{name}: part of the boot mirror")
        if allowed and not any(ids & a for a in allowed):
            out.append(f"{name}: not in hosts.yaml scratch_disks")
        if d.get("capacity_bytes") != cls.capacity_bytes:
            out.append(f"{name}: {d.get('capacity_bytes')} bytes, the profile says {cls.capacity_bytes}")
        if any(str(d.get("serial")) in c for c in failed if d.get("serial")):
            out.append(f"{name}: a check failed on this drive in the accepted run")
    for disk, a in zip(host.scratch_disks, allowed, strict=True):
        if not any(_ident(d) & a for d in drives):
            listed = disk.model_dump(exclude_none=True)
            out.append(f"scratch_disks {listed}: not among the accepted run's drives")
    return out


def _count_refusals(drives: list[dict[str, Any]], cls: DriveClass, zfs: ZfsPool) -> list[str]:
    out: list[str] = []
    if len(drives) != cls.count:
        out.append(f"{len(drives)} scratch NVMe drive(s) in the accepted run, the profile says {cls.count}")
    minimum = _LAYOUT_MINIMUM.get(zfs.layout)
    if minimum is None:
        out.append(f"layout {zfs.layout!r}: expected stripe, mirror or raidz1")
    elif len(drives) < minimum:
        out.append(f"layout {zfs.layout} needs at least {minimum} drives, got {len(drives)}")
    return out


def _commands(zfs: ZfsPool, given: list[str]) -> list[str]:
    vdev = [] if zfs.layout == "stripe" else [zfs.layout]
    devices = [shlex.quote(d) for d in given]  # a second line of defence: the names are checked
    return [
        # Run on the host as root. The first three refuse to go on if any device is in use.
        *(f"test -b {dev}" for dev in devices),
        f"! lsblk -nro MOUNTPOINTS {' '.join(devices)} | grep -q .",
        f"! zpool list -H -o name {zfs.name} 2>/dev/null",
        " ".join(
            [
                "zpool create -o ashift=12 -O compression=lz4 -O atime=off -O xattr=sa -m none",
                zfs.name,
                *vdev,
                *devices,
            ]
        ),
        f"zpool status -P {zfs.name}",
    ]


def zfs_plan(profile: Profile, host: Host, record: dict[str, Any]) -> ZfsPlan:
    zfs = profile.platform.zfs
    if zfs is None:
        return ZfsPlan(None)
    plan = ZfsPlan(zfs.name)
    cls = profile.drives(DriveRole.scratch)
    inv = record["inventory"].get("in_os") or {}
    drives = [d for d in inv.get("drives", []) if str(d.get("protocol", "")).lower() == "nvme"]
    if record["verdict"] != "accepted":
        plan.refusals.append(f"run {record['run']['run_id']} is {record['verdict']}, not accepted")
    if cls is None:
        plan.refusals.append("the profile names a ZFS pool but no scratch drives")
        return plan
    plan.refusals += _drive_refusals(drives, cls, host, inv, record)
    plan.refusals += _count_refusals(drives, cls, zfs)
    if plan.refusals:
        return plan
    devices = [_by_id(d) for d in sorted(drives, key=lambda d: str(d.get("serial")))]
    # The names come from what the installed host reported (model, serial, WWN): they reach a root
    # shell script, so one that no udev by-id name could be is refused, not quoted and hoped for.
    plan.refusals += [
        f"{dev!r}: not a udev by-id device name" for dev in devices if not _BY_ID.fullmatch(dev)
    ]
    if plan.refusals:
        return plan
    plan.devices = devices
    plan.commands = _commands(zfs, plan.devices)
    return plan
