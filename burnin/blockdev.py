"""Adapter: may the agent write to this block device? Only when the plan allow-lists it by a stable
identity (serial or WWN) AND the agent proves it is unused: not mounted (nor any partition), not
swap, no holders (md, LVM, dm), no RAID/LVM/ZFS signature, not in a ZFS pool, and not in the device
chain of the root or boot filesystems. Every reason to refuse is returned, not just the first.

Loop devices have no serial or WWN. A plan may name one explicitly with
{"path": "/dev/loopN", "backing_file": "/abs/file"}; that rule matches only a loop device whose
kernel-reported backing file is exactly that file (tests use it; real drives never match it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Set

from burnin.hardware import normalize_wwn
from burnin.hostio import read

SYS = Path("/sys")
PROC = Path("/proc")
PROTECTED_MOUNTS = ("/", "/boot", "/boot/efi", "/usr", "/var")
IN_USE_SIGNATURES = {
    "LVM2_member": "an LVM physical volume",
    "linux_raid_member": "an md RAID member",
    "zfs_member": "a ZFS pool member",
    "ddf_raid_member": "a DDF RAID member",
    "isw_raid_member": "an Intel RAID member",
    "swap": "a swap area",
}


def identity(name: str) -> Dict[str, Optional[str]]:
    base = SYS / "block" / name
    serial = read(base / "device" / "serial") or read(base / "serial")
    wwn = read(base / "wwid") or read(base / "device" / "wwid")
    ctrl = re.match(r"^(nvme\d+)n\d+$", name)
    if ctrl and not serial:
        serial = read(SYS / "class" / "nvme" / ctrl.group(1) / "serial")
    return {
        "serial": serial.strip() if serial else None,
        "wwn": wwn,
        "backing_file": read(base / "loop" / "backing_file"),
    }


def allow_rule(name: str, allow: List[Dict[str, Optional[str]]]) -> Optional[str]:
    """Which allow-list entry names this device (a description of it), or None."""
    ident = identity(name)
    for entry in allow:
        serial, wwn = entry.get("serial"), entry.get("wwn")
        if serial and ident["serial"] and serial.strip() == ident["serial"]:
            return f"serial {serial}"
        if wwn and normalize_wwn(wwn) == normalize_wwn(ident["wwn"]):
            return f"wwn {wwn}"
        path, backing = entry.get("path"), entry.get("backing_file")
        if (
            path
            and backing
            and name.startswith("loop")
            and path == "/dev/" + name
            and ident["backing_file"] is not None
            and os.path.realpath(backing) == ident["backing_file"]
        ):
            return f"loop device {path} backed by {backing}"
    return None


def _partitions(name: str) -> List[str]:
    base = SYS / "block" / name
    return sorted(p.name for p in base.iterdir() if (p / "partition").exists()) if base.is_dir() else []


def _devnum(name: str) -> Optional[str]:
    for base in (SYS / "block" / name, SYS / "class" / "block" / name):
        num = read(base / "dev")
        if num:
            return num
    return None


def _mountinfo() -> List[Dict[str, str]]:
    rows = []
    for line in (read(PROC / "self" / "mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if len(f) >= 5 and len(r) >= 2:
            rows.append({"devnum": f[2], "mountpoint": f[4], "source": r[1]})
    return rows


def _block_name(devnum: str) -> Optional[str]:
    link = SYS / "dev" / "block" / devnum
    return os.path.basename(os.path.realpath(link)) if link.exists() else None


def _chain(name: str, seen: Set[str]) -> None:
    """The device and everything below it: a partition's disk, a dm/md device's slaves."""
    if name in seen:
        return
    seen.add(name)
    real = os.path.realpath(SYS / "class" / "block" / name)
    if (Path(real) / "partition").exists():
        _chain(os.path.basename(os.path.dirname(real)), seen)
    for slave in sorted((Path(real) / "slaves").glob("*")):
        _chain(slave.name, seen)


def protected_devices() -> Dict[str, str]:
    """{block device name: why it is protected} for the root/boot chains; raises if root is unresolved."""
    out: Dict[str, str] = {}
    rows = _mountinfo()
    for mp in PROTECTED_MOUNTS:
        row = next((r for r in reversed(rows) if r["mountpoint"] == mp), None)
        if row is None:
            continue
        name = _block_name(row["devnum"])
        if name is None:
            if mp == "/":
                raise LookupError(
                    f"cannot resolve the block device under / ({row['source']}, {row['devnum']})"
                )
            continue
        chain: Set[str] = set()
        _chain(name, chain)
        for dev in chain:
            out.setdefault(dev, f"in the device chain of the {mp} filesystem")
    return out


def _fstype(name: str) -> Optional[str]:
    if shutil.which("lsblk") is None:
        return None
    proc = subprocess.run(
        ["lsblk", "-dn", "-o", "FSTYPE", "/dev/" + name], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def reasons_in_use(name: str) -> List[str]:
    """Every reason this device must not be written; empty means the agent proved it unused."""
    if not (SYS / "block" / name).is_dir():
        return [f"/dev/{name} is not a whole block device"]
    reasons: List[str] = []
    names = [name, *_partitions(name)]
    nums = {n: _devnum(n) for n in names}
    for row in _mountinfo():
        for n in names:
            if row["devnum"] == nums[n] or row["source"] == "/dev/" + n:
                reasons.append(f"/dev/{n} is mounted at {row['mountpoint']}")
    for line in (read(PROC / "swaps") or "").splitlines()[1:]:
        dev = os.path.basename(os.path.realpath(line.split()[0])) if line.split() else ""
        if dev in names:
            reasons.append(f"/dev/{dev} is in use as swap")
    for n in names:
        base = SYS / "block" / name / (n if n != name else "")
        for holder in sorted((base / "holders").glob("*")):
            dm = read(SYS / "block" / holder.name / "dm" / "name")
            reasons.append(f"/dev/{n} is held by {holder.name}" + (f" ({dm})" if dm else ""))
    for line in (read(PROC / "mdstat") or "").splitlines():
        if any(re.search(rf"\b{re.escape(n)}\[\d+\]", line) for n in names):
            reasons.append(f"/dev/{name} is in an md array: {line.strip()}")
    for n in names:
        sig = _fstype(n)
        if sig in IN_USE_SIGNATURES:
            reasons.append(f"/dev/{n} carries {IN_USE_SIGNATURES[sig]} signature ({sig})")
    if shutil.which("zpool"):
        proc = subprocess.run(["zpool", "status", "-P"], capture_output=True, text=True, check=False)
        if any(re.search(rf"/dev/{re.escape(n)}\b", proc.stdout) for n in names):
            reasons.append(f"/dev/{name} is in a ZFS pool (zpool status)")
    try:
        protected = protected_devices()
    except LookupError as exc:
        reasons.append(f"cannot prove /dev/{name} is off the root chain: {exc}")
        protected = {}
    for n in names:
        if n in protected:
            reasons.append(f"/dev/{n} is {protected[n]}")
    return reasons
