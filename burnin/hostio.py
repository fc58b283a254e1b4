"""Adapter: small reads of /proc and /sys the suites share (memory, EDAC, kernel log, NVMe sysfs)."""

from __future__ import annotations

import errno
import glob
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from burnin.parse_os import parse_link_speed

SYS = Path("/sys")
PROC = Path("/proc")


def read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def meminfo_kib() -> Dict[str, int]:
    out = {}
    for line in (read(PROC / "meminfo") or "").splitlines():
        m = re.match(r"^(\w+):\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def online_cpus() -> int:
    return len(os.sched_getaffinity(0))


def edac_snapshot() -> Optional[Dict[str, Dict[str, int]]]:
    """Per memory controller and per DIMM CE/UE counts; None when the kernel exposes no EDAC."""
    mcs = sorted(glob.glob(str(SYS / "devices/system/edac/mc/mc[0-9]*")))
    if not mcs:
        return None
    out: Dict[str, Dict[str, int]] = {}
    for mc in mcs:
        base = Path(mc)
        out[base.name] = {"ce": int(read(base / "ce_count") or 0), "ue": int(read(base / "ue_count") or 0)}
        for dimm in sorted(base.glob("dimm[0-9]*")) + sorted(base.glob("rank[0-9]*")):
            label = read(dimm / "dimm_label") or f"{base.name}/{dimm.name}"
            out[label] = {
                "ce": int(read(dimm / "dimm_ce_count") or 0),
                "ue": int(read(dimm / "dimm_ue_count") or 0),
            }
    return out


def edac_deltas(
    before: Dict[str, Dict[str, int]], after: Dict[str, Dict[str, int]]
) -> Dict[str, Dict[str, int]]:
    """The counters that moved between two snapshots (a counter reset counts as its new value)."""
    moved = {}
    for name, now in after.items():
        was = before.get(name, {"ce": 0, "ue": 0})
        d = {k: (now[k] - was[k] if now[k] >= was[k] else now[k]) for k in ("ce", "ue")}
        if d["ce"] or d["ue"]:
            moved[name] = d
    return moved


class KernelLog:
    """New kernel log records since construction, read from /dev/kmsg without blocking."""

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self.error: Optional[str] = None
        self.fd: Optional[int] = None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            self.error = f"cannot read {path}: {exc.strerror}"

    def read_new(self) -> List[str]:
        if self.fd is None:
            return []
        lines = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                if exc.errno == errno.EPIPE:  # overwritten while we read: keep going
                    continue
                self.error = f"kernel log read failed: {exc.strerror}"
                break
            if not rec:
                break
            text = rec.decode(errors="replace")
            lines.append(text.split(";", 1)[-1].rstrip("\n"))
        return lines

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def nvme_namespaces() -> List[Dict[str, Any]]:
    """Every NVMe namespace block device with its controller's identity and PCIe link, from sysfs."""
    out: List[Dict[str, Any]] = []
    for ctrl in sorted(glob.glob(str(SYS / "class/nvme/nvme[0-9]*"))):
        cbase = Path(ctrl)
        dev = cbase / "device"
        for ns in sorted(glob.glob(str(cbase / (cbase.name + "n[0-9]*")))) or sorted(
            glob.glob(str(cbase / "nvme[0-9]*c[0-9]*n[0-9]*"))
        ):
            name = Path(ns).name
            if re.search(r"c\d+n", name):  # multipath hidden path: the block device is nvmeXnY
                name = re.sub(r"c\d+n", "n", name)
            blk = SYS / "block" / name
            out.append(
                {
                    "name": name,
                    "device": "/dev/" + name,
                    "controller": cbase.name,
                    "model": read(cbase / "model"),
                    "serial": read(cbase / "serial"),
                    "firmware": read(cbase / "firmware_rev"),
                    "wwn": read(blk / "wwid"),
                    "capacity_bytes": int(read(blk / "size") or 0) * 512 or None,
                    "pcie_gen": parse_link_speed(read(dev / "current_link_speed")),
                    "pcie_width": int(read(dev / "current_link_width") or 0) or None,
                    "pcie_gen_max": parse_link_speed(read(dev / "max_link_speed")),
                    "pcie_width_max": int(read(dev / "max_link_width") or 0) or None,
                }
            )
    return out


def block_size_bytes(name: str) -> Optional[int]:
    raw = read(SYS / "block" / name / "size")
    return int(raw) * 512 if raw and raw.isdigit() else None
