"""What changed in a host's hardware between two inventories (the last accepted one and now). Pure.

Parts are matched by where they sit (DIMM locator, GPU index/slot, drive bay, NIC name, CPU socket,
firmware name, PSU slot); a part whose identity (serial, MAC, UUID) differs in the same place was
*replaced*. A part whose BMC Status (State, Health, HealthRollup) changed is listed as `health`.
Used by `provision reinstall`: shown before the reinstall, stored with the run, listed in the report,
and used to re-target the kickstart's boot disks and to weigh the burn-in toward the changed parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from burnin.hardware import HardwareInventory, normalize_wwn
from provision.model.hosts import DiskId


class ChangeKind(StrEnum):
    added = "added"
    removed = "removed"
    replaced = "replaced"  # same place, another part (serial / MAC / UUID differs)
    changed = "changed"  # same part, a property differs (firmware, speed, size)


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    part: str  # "dimm", "gpu", "drive", "nic", "cpu", "firmware", "psu", "health", "system"
    where: str  # the locator / index / bay / name
    kind: ChangeKind
    fields: tuple[FieldChange, ...] = ()

    def describe(self) -> str:
        detail = "; ".join(f"{f.field} {f.before} -> {f.after}" for f in self.fields)
        return f"{self.part} {self.where}: {self.kind}" + (f" ({detail})" if detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value, "text": self.describe()}


# part -> (inventory attribute, key that says where it sits, identity fields, property fields)
_PARTS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("cpu", "cpus", "socket", ("model",), ("cores", "threads", "max_speed_mhz")),
    (
        "dimm",
        "dimms",
        "locator",
        ("serial",),
        ("present", "size_mib", "type", "rated_mts", "configured_mts", "part_number", "manufacturer"),
    ),
    (
        "gpu",
        "gpus",
        "index",
        ("serial", "uuid"),
        ("name", "memory_mib", "vbios", "pcie_gen_max", "pcie_width_max", "board_part_number"),
    ),
    ("drive", "drives", "name", ("serial", "wwn"), ("model", "capacity_bytes", "firmware", "protocol")),
    ("nic", "nics", "name", ("mac",), ("speed_mbps",)),
    ("firmware", "firmware", "name", (), ("version",)),
    (
        "psu",
        "psus",
        "name",
        ("serial",),
        ("model", "capacity_w", "firmware", "input_voltage_v", "state", "health"),
    ),
    # Every part's Status as the BMC states it ("dimm:P0_DIMMF1", "fan:1/FAN3"): only changes count,
    # a part that came or went is listed under its own kind.
    ("health", "health", "part", (), ("state", "health", "rollup")),
)
_SYSTEM_FIELDS = ("manufacturer", "model", "serial", "uuid", "bios_version", "bmc_version")
# A part's State follows power and cabling (a System "Enabled" on, "StandbyOffline" off; a port
# "Disabled"): a change of it is news only where a part went, or came back from, offline.
OFFLINE = "UnavailableOffline"


def _news(part: str, changes: list[FieldChange]) -> list[FieldChange]:
    if part != "health":
        return changes
    return [c for c in changes if c.field != "state" or OFFLINE in (c.before, c.after)]


def _fields(before: Any, after: Any, names: tuple[str, ...]) -> list[FieldChange]:
    out = []
    for name in names:
        b, a = getattr(before, name, None), getattr(after, name, None)
        # A property one side could not see is not a change: the BMC may simply not expose it.
        if b is not None and a is not None and b != a:
            out.append(FieldChange(name, b, a))
    return out


def diff_inventories(before: HardwareInventory, after: HardwareInventory) -> list[Change]:
    changes: list[Change] = []
    sys_fields = _fields(before.system, after.system, _SYSTEM_FIELDS)
    if sys_fields:
        changes.append(Change("system", "-", ChangeKind.changed, tuple(sys_fields)))
    # A PSU's health is said once, under `psu`.
    psu_parts = {f"psu:{p.name}" for inv in (before, after) for p in inv.psus}
    for part, attr, key, identity, props in _PARTS:
        old = {getattr(p, key): p for p in getattr(before, attr)}
        new = {getattr(p, key): p for p in getattr(after, attr)}
        for where in sorted(set(old) | set(new), key=str):
            b, a = old.get(where), new.get(where)
            if part == "health" and (a is None or b is None or where in psu_parts):
                continue
            if b is None:
                seen = tuple(
                    FieldChange(f, None, getattr(a, f)) for f in identity if getattr(a, f) is not None
                )
                changes.append(Change(part, str(where), ChangeKind.added, seen))
            elif a is None:
                changes.append(Change(part, str(where), ChangeKind.removed))
            else:
                ident = _fields(b, a, identity)
                rest = _news(part, _fields(b, a, props))
                if ident:
                    changes.append(Change(part, str(where), ChangeKind.replaced, tuple(ident + rest)))
                elif rest:
                    changes.append(Change(part, str(where), ChangeKind.changed, tuple(rest)))
    return changes


# Which burn-in suite exercises a changed part (drives: by protocol).
_SUITE_OF = {"cpu": "cpu", "dimm": "memory", "gpu": "gpu"}


def suites_to_weigh(changes: list[Change], after: HardwareInventory) -> list[str]:
    """Suites that exercise the replaced, added or changed parts, in a stable order."""
    protocols = {d.name: (d.protocol or "").lower() for d in after.drives}
    out: list[str] = []
    for c in changes:
        if c.kind is ChangeKind.removed:
            continue
        suite = _SUITE_OF.get(c.part)
        if c.part == "drive":
            suite = "nvme" if protocols.get(c.where) == "nvme" else "boot_disks"
        if suite and suite not in out:
            out.append(suite)
    return out


def _same(disk: DiskId, serial: Any, wwn: Any) -> bool:
    same_wwn = disk.wwn is not None and normalize_wwn(disk.wwn) == normalize_wwn(wwn)
    return bool((disk.serial and disk.serial == serial) or same_wwn)


def retarget_boot_disks(
    pinned: tuple[DiskId, ...], changes: list[Change], after: HardwareInventory
) -> tuple[tuple[DiskId, ...], list[str]]:
    """The boot disks the kickstart names, moved to the new drives where a pinned boot SSD was
    replaced in its bay. Returns the disks and one line per move."""
    by_name = {d.name: d for d in after.drives}
    moved: list[str] = []
    out: list[DiskId] = []
    for disk in pinned:
        target = disk
        for c in changes:
            if c.part != "drive" or c.kind is not ChangeKind.replaced:
                continue
            before = {f.field: f.before for f in c.fields}
            new = by_name.get(c.where)
            if new is not None and _same(disk, before.get("serial"), before.get("wwn")):
                target = DiskId(serial=new.serial, wwn=new.wwn, model=new.model)
                moved.append(
                    f"boot disk in bay {c.where}: {disk.serial or disk.wwn} -> {new.serial or new.wwn}"
                )
        out.append(target)
    return tuple(out), moved
