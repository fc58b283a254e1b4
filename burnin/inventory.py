"""Adapter: the in-OS HardwareInventory (source "os"). Tools run through the run's tool runner, so
each one leaves an artifact; a missing tool or unreadable source becomes an entry in `gaps`.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from burnin import hostio
from burnin.context import ToolRun
from burnin.hardware import Cpu, Drive, Firmware, HardwareInventory, Nic, PcieDevice, SystemInfo
from burnin.parse_os import (
    parse_cpuinfo,
    parse_dmidecode_memory,
    parse_link_speed,
    parse_lsblk,
    parse_lscpu,
    parse_nvme_id_ctrl,
    parse_nvme_list,
    parse_os_release,
)

SYS = Path("/sys")
RunTool = Callable[..., ToolRun]
LSBLK_COLUMNS = "NAME,TYPE,SIZE,MODEL,SERIAL,WWN,TRAN,ROTA,REV,MOUNTPOINT,PKNAME,FSTYPE"
# PCI class prefixes worth listing: NVMe, VGA/3D (GPUs), Ethernet, InfiniBand
PCI_CLASSES = {
    "0x010802": "nvme",
    "0x0300": "display",
    "0x0302": "3d",
    "0x0200": "ethernet",
    "0x0207": "infiniband",
}


def _tool_gap(run: ToolRun) -> str:
    ev = run.evidence
    if ev.error:
        return ev.error
    return f"exit {ev.exit_code}: {ev.excerpt.splitlines()[-1] if ev.excerpt else 'no output'}"


def _cpu(inv: HardwareInventory, run_tool: RunTool) -> None:
    run = run_tool("inventory.lscpu", ["lscpu", "-J"], 30)
    info: Dict[str, Any] = {}
    if run.evidence.exit_code == 0:
        try:
            info = parse_lscpu(run.stdout)
        except ValueError as exc:
            inv.gaps["cpu.lscpu"] = str(exc)
    else:
        inv.gaps["cpu.lscpu"] = _tool_gap(run)
    cpuinfo = hostio.read(Path("/proc/cpuinfo"))
    ci: Dict[str, Any] = {}
    if cpuinfo:
        try:
            ci = parse_cpuinfo(cpuinfo)
        except ValueError as exc:
            inv.gaps["cpu.cpuinfo"] = str(exc)
    else:
        inv.gaps["cpu.cpuinfo"] = "/proc/cpuinfo is unreadable or empty"
    sockets = info.get("sockets") or ci.get("sockets")
    if not sockets:  # never an invented socket: what neither source says is a gap
        inv.gaps["cpu.sockets"] = "neither lscpu nor /proc/cpuinfo gave a socket count"
        sockets = 0
    cores, threads = info.get("cores_per_socket"), info.get("threads_per_core")
    models = ci.get("models") or []
    for s in range(int(sockets)):
        inv.cpus.append(
            Cpu(
                socket=str(s),
                model=info.get("model") or (models[0] if models else None),
                vendor=info.get("vendor"),
                cores=cores,
                threads=cores * threads if cores and threads else None,
                max_speed_mhz=info.get("max_mhz"),
                family=info.get("family"),
                model_id=info.get("model_id"),
            )
        )
    inv.logical_cpus = info.get("logical_cpus") or ci.get("logical_cpus")
    inv.numa_nodes = info.get("numa_nodes")
    groups = SYS / "kernel" / "iommu_groups"
    inv.iommu_groups = len(list(groups.iterdir())) if groups.is_dir() else None


def _memory(inv: HardwareInventory, run_tool: RunTool) -> None:
    total = hostio.meminfo_kib().get("MemTotal")
    inv.memory_total_mib = total // 1024 if total else None
    run = run_tool("inventory.dmidecode_memory", ["dmidecode", "-t", "16", "-t", "17"], 30)
    if run.missing or run.evidence.error:
        inv.gaps["memory.dimms"] = _tool_gap(run)
        return
    try:
        parsed = parse_dmidecode_memory(run.stdout + "\n" + run.stderr)
    except ValueError as exc:
        inv.gaps["memory.dimms"] = str(exc)
        return
    inv.dimms = list(parsed["dimms"])
    edac = hostio.edac_snapshot()
    if edac is None:
        inv.gaps["memory.edac"] = "no EDAC memory controllers in /sys/devices/system/edac/mc"


def _drives(inv: HardwareInventory, run_tool: RunTool) -> None:
    run = run_tool("inventory.lsblk", ["lsblk", "-J", "-b", "-d", "-o", LSBLK_COLUMNS], 30)
    if run.evidence.exit_code != 0:
        inv.gaps["drives.lsblk"] = _tool_gap(run)
    else:
        try:
            for dev in parse_lsblk(run.stdout):
                if dev.get("type") != "disk" or str(dev.get("name", "")).startswith(("zram", "nvme")):
                    continue
                tran = (dev.get("tran") or "").lower()
                inv.drives.append(
                    Drive(
                        name=dev["name"],
                        protocol={"sata": "SATA", "sas": "SAS", "nvme": "NVMe"}.get(tran, tran or None),
                        media="HDD" if dev.get("rota") in (True, "1", 1) else "SSD",
                        model=(dev.get("model") or "").strip() or None,
                        serial=(dev.get("serial") or "").strip() or None,
                        wwn=dev.get("wwn"),
                        capacity_bytes=int(dev["size"]) if str(dev.get("size", "")).isdigit() else None,
                        firmware=(dev.get("rev") or "").strip() or None,
                    )
                )
        except ValueError as exc:
            inv.gaps["drives.lsblk"] = str(exc)
    namespaces = hostio.nvme_namespaces()
    if not namespaces:
        inv.gaps["drives.nvme"] = "no NVMe controllers in /sys/class/nvme"
        return
    listed: Dict[str, Dict[str, Any]] = {}
    run = run_tool("inventory.nvme_list", ["nvme", "list", "-o", "json"], 30)
    if run.evidence.exit_code == 0:
        try:
            listed = {str(d["device"]): d for d in parse_nvme_list(run.stdout)}
        except ValueError as exc:
            inv.gaps["drives.nvme_list"] = str(exc)
    else:
        inv.gaps["drives.nvme_list"] = _tool_gap(run)
    for ns in namespaces:
        ctrl: Dict[str, Any] = {}
        idc = run_tool(
            f"inventory.nvme_id_ctrl.{ns['controller']}",
            ["nvme", "id-ctrl", "-o", "json", f"/dev/{ns['controller']}"],
            30,
        )
        if idc.evidence.exit_code == 0:
            try:
                ctrl = parse_nvme_id_ctrl(idc.stdout)
            except ValueError as exc:
                inv.gaps[f"drives.{ns['name']}.id_ctrl"] = str(exc)
        lst = listed.get(str(ns["device"]), {})
        inv.drives.append(
            Drive(
                name=str(ns["name"]),
                protocol="NVMe",
                media="SSD",
                model=str(ctrl.get("model") or lst.get("model") or ns["model"] or "") or None,
                serial=str(ctrl.get("serial") or lst.get("serial") or ns["serial"] or "") or None,
                wwn=ns["wwn"],
                capacity_bytes=ns["capacity_bytes"] or lst.get("capacity_bytes"),
                firmware=str(ctrl.get("firmware") or lst.get("firmware") or ns["firmware"] or "") or None,
                pcie_gen=ns["pcie_gen"],
                pcie_width=ns["pcie_width"],
            )
        )


def _pcie(inv: HardwareInventory) -> None:
    for dev in sorted(glob.glob(str(SYS / "bus/pci/devices/*"))):
        base = Path(dev)
        cls = hostio.read(base / "class") or ""
        kind = next((v for k, v in PCI_CLASSES.items() if cls.startswith(k)), None)
        if kind is None:
            continue
        inv.pcie.append(
            PcieDevice(
                address=base.name,
                vendor_id=hostio.read(base / "vendor"),
                device_id=hostio.read(base / "device"),
                device_class=kind,
                link_gen=parse_link_speed(hostio.read(base / "current_link_speed")),
                link_width=int(hostio.read(base / "current_link_width") or 0) or None,
                max_link_gen=parse_link_speed(hostio.read(base / "max_link_speed")),
                max_link_width=int(hostio.read(base / "max_link_width") or 0) or None,
            )
        )


def _nics(inv: HardwareInventory) -> None:
    for path in sorted(glob.glob(str(SYS / "class/net/*"))):
        base = Path(path)
        if not (base / "device").exists():  # lo, bridges, veths: not hardware
            continue
        speed = hostio.read(base / "speed")
        pci = os.path.basename(os.path.realpath(base / "device"))
        link = next((p for p in inv.pcie if p.address == pci), None)
        inv.nics.append(
            Nic(
                name=base.name,
                mac=hostio.read(base / "address"),
                speed_mbps=int(speed) if speed and speed.lstrip("-").isdigit() and int(speed) > 0 else None,
                link_up=hostio.read(base / "operstate") == "up",
                driver=os.path.basename(os.path.realpath(base / "device" / "driver")) or None,
                pcie_gen=link.link_gen if link else None,
                pcie_width=link.link_width if link else None,
            )
        )


def _system(inv: HardwareInventory, run_tool: RunTool) -> None:
    dmi = SYS / "class/dmi/id"

    def dmi_field(name: str) -> Optional[str]:
        return hostio.read(dmi / name)

    bios = dmi_field("bios_version")
    if bios is None:
        inv.gaps["system.dmi"] = "no /sys/class/dmi/id (no SMBIOS tables exposed)"
    bmc: Optional[str] = None
    run = run_tool("inventory.ipmitool_mc_info", ["ipmitool", "mc", "info"], 30)
    m = re.search(r"Firmware Revision\s*:\s*(\S+)", run.stdout)
    if m:
        bmc = m.group(1)
    else:
        inv.gaps["system.bmc_version"] = (
            _tool_gap(run) if run.evidence.exit_code != 0 else "no firmware revision"
        )
    inv.system = SystemInfo(
        manufacturer=dmi_field("sys_vendor"),
        model=dmi_field("product_name"),
        serial=dmi_field("product_serial"),
        uuid=dmi_field("product_uuid"),
        bios_version=bios,
        bmc_version=bmc,
        boot_mode="UEFI" if Path("/sys/firmware/efi").exists() else "Legacy",
        os_name=parse_os_release(hostio.read(Path("/etc/os-release")) or ""),
        kernel=platform.release(),
    )
    if bios:
        inv.firmware.append(Firmware(name="BIOS", version=bios))
    if bmc:
        inv.firmware.append(Firmware(name="BMC", version=bmc))


def _gpus(inv: HardwareInventory, run_tool: RunTool) -> None:
    try:
        from burnin.nvml import os_gpus
    except ImportError as exc:
        inv.gaps["gpus"] = f"no NVML adapter in this agent ({exc})"
        return
    inv.gpus = os_gpus(inv.gaps)


def collect_inventory(run_tool: RunTool) -> HardwareInventory:
    """Every part the OS shows; one unreadable part is a gap, never the end of the inventory."""
    inv = HardwareInventory(source="os", collected_at=time.time())
    parts: List[Callable[[HardwareInventory, RunTool], None]] = [_cpu, _memory, _drives, _gpus, _system]
    for part in parts:
        try:
            part(inv, run_tool)
        except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:  # tool output we did not expect
            inv.gaps[part.__name__.strip("_")] = f"could not read: {exc!r}"
    try:
        _pcie(inv)
        _nics(inv)
    except (ValueError, OSError) as exc:
        inv.gaps["pcie"] = f"could not read sysfs: {exc!r}"
    return inv


def root_disks() -> List[str]:
    """Names of the whole disks under the root and boot filesystems (the boot mirror on a host)."""
    from burnin.blockdev import protected_devices

    try:
        chain = protected_devices()
    except LookupError:
        return []
    return sorted(
        n for n in chain if (SYS / "block" / n).is_dir() and not n.startswith(("dm-", "md", "loop"))
    )
