"""Pure parsers for what the OS says about its hardware: lscpu, /proc/cpuinfo, dmidecode, lsblk,
nvme-cli, sysfs PCIe link strings, os-release. Text in, plain values out; no I/O here.

Each parser raises ValueError with a short reason when the text is not what the tool prints, so
the caller can record the gap instead of guessing.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from burnin.hardware import Dimm

# PCIe transfer rate (GT/s) -> generation
_GEN_BY_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}


def _int(text: Any) -> Optional[int]:
    if text is None:
        return None
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return int(text)
    m = re.match(r"^\s*(-?\d+)", str(text))
    return int(m.group(1)) if m else None


def _load_json(text: str, tool: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{tool}: output is not JSON ({exc})") from None


# ---- CPU ---------------------------------------------------------------------------------------


def _flatten_lscpu(entries: List[Dict[str, Any]], out: Dict[str, str]) -> None:
    for entry in entries:
        key = str(entry.get("field", "")).rstrip(":").strip()
        if key and entry.get("data") is not None:
            out.setdefault(key, str(entry["data"]))
        _flatten_lscpu(entry.get("children", []), out)  # util-linux >= 2.38 nests sections


def parse_lscpu(text: str) -> Dict[str, Any]:
    """`lscpu -J` -> model, vendor, sockets, cores/threads, logical CPUs, NUMA nodes, family."""
    doc = _load_json(text, "lscpu -J")
    if not isinstance(doc, dict) or not isinstance(doc.get("lscpu"), list):
        raise ValueError("lscpu -J: expected {'lscpu': [...]}")
    fields: Dict[str, str] = {}
    _flatten_lscpu(doc["lscpu"], fields)
    max_mhz = fields.get("CPU max MHz")
    return {
        "model": fields.get("Model name"),
        "vendor": fields.get("Vendor ID"),
        "sockets": _int(fields.get("Socket(s)")),
        "cores_per_socket": _int(fields.get("Core(s) per socket")),
        "threads_per_core": _int(fields.get("Thread(s) per core")),
        "logical_cpus": _int(fields.get("CPU(s)")),
        "numa_nodes": _int(fields.get("NUMA node(s)")),
        "family": _int(fields.get("CPU family")),
        "model_id": _int(fields.get("Model")),
        "max_mhz": int(float(max_mhz)) if max_mhz else None,
        "hypervisor": fields.get("Hypervisor vendor"),
    }


def parse_cpuinfo(text: str) -> Dict[str, Any]:
    """/proc/cpuinfo -> logical CPU count, sockets (physical ids), model names, current MHz per CPU."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    if not blocks or "processor" not in blocks[0]:
        raise ValueError("/proc/cpuinfo: no 'processor' entries")
    sockets = set()
    models = set()
    mhz: List[float] = []
    for block in blocks:
        fields = {}
        for line in block.splitlines():
            if ":" in line:
                k, _, v = line.partition(":")
                fields[k.strip()] = v.strip()
        if "physical id" in fields:
            sockets.add(fields["physical id"])
        if "model name" in fields:
            models.add(fields["model name"])
        if "cpu MHz" in fields:
            mhz.append(float(fields["cpu MHz"]))
    return {
        "logical_cpus": len(blocks),
        "sockets": len(sockets) or None,
        "models": sorted(models),
        "mhz": mhz,
    }


# ---- DIMMs -------------------------------------------------------------------------------------


def _dmi_records(text: str) -> List[Tuple[int, Dict[str, str]]]:
    records: List[Tuple[int, Dict[str, str]]] = []
    for chunk in re.split(r"\n(?=Handle 0x)", text):
        head = re.match(r"Handle 0x[0-9A-Fa-f]+, DMI type (\d+),", chunk)
        if not head:
            continue
        fields: Dict[str, str] = {}
        for line in chunk.splitlines()[2:]:
            if line.startswith("\t") and not line.startswith("\t\t") and ":" in line:
                k, _, v = line.strip().partition(":")
                fields[k.strip()] = v.strip()
        records.append((int(head.group(1)), fields))
    return records


def _size_mib(text: str) -> Optional[int]:
    m = re.match(r"^(\d+)\s*(MB|GB|TB|kB|MiB|GiB)$", text.strip())
    if not m:
        return None
    scale = {"kB": 1 / 1024, "MB": 1, "MiB": 1, "GB": 1024, "GiB": 1024, "TB": 1024 * 1024}[m.group(2)]
    return int(int(m.group(1)) * scale)


def _mts(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    m = re.match(r"^(\d+)\s*(MT/s|MHz)", text)
    return int(m.group(1)) if m else None


def _clean(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    text = text.strip()
    if text in ("", "Unknown", "Not Specified", "NO DIMM", "Not Provided", "None"):
        return None
    return text


def parse_dmidecode_memory(text: str) -> Dict[str, Any]:
    """`dmidecode -t 16 -t 17` -> {"arrays": [...], "dimms": [Dimm...]}: populated and empty slots."""
    if "/dev/mem" in text and "Handle 0x" not in text:
        raise ValueError("dmidecode: no SMBIOS entry point (" + text.strip().splitlines()[-1] + ")")
    records = _dmi_records(text)
    if not records:
        raise ValueError("dmidecode: no DMI records in the output")
    arrays = []
    dimms: List[Dimm] = []
    for kind, f in records:
        if kind == 16:
            arrays.append(
                {
                    "ecc": f.get("Error Correction Type"),
                    "max_capacity": f.get("Maximum Capacity"),
                    "slots": _int(f.get("Number Of Devices")),
                }
            )
        elif kind == 17:
            size = f.get("Size", "")
            present = not size.startswith("No Module") and size not in ("", "Unknown")
            bank = _clean(f.get("Bank Locator")) or ""
            where = re.search(r"P(\d+)\s+CHANNEL\s+(\w+)", bank, re.IGNORECASE)
            total_w, data_w = _int(f.get("Total Width")), _int(f.get("Data Width"))
            dimms.append(
                Dimm(
                    locator=f.get("Locator") or bank or "unknown",
                    present=present,
                    size_mib=_size_mib(size) if present else None,
                    type=_clean(f.get("Type")) if present else None,
                    rated_mts=_mts(f.get("Speed")) if present else None,
                    configured_mts=_mts(f.get("Configured Memory Speed") or f.get("Configured Clock Speed"))
                    if present
                    else None,
                    manufacturer=_clean(f.get("Manufacturer")) if present else None,
                    part_number=_clean(f.get("Part Number")) if present else None,
                    serial=_clean(f.get("Serial Number")) if present else None,
                    rank=_int(f.get("Rank")) if present else None,
                    ecc=(total_w > data_w) if present and total_w and data_w else None,
                    socket=int(where.group(1)) if where else None,
                    channel=where.group(2).upper() if where else None,
                )
            )
    return {"arrays": arrays, "dimms": dimms}


# ---- block devices and NVMe --------------------------------------------------------------------


def parse_lsblk(text: str) -> List[Dict[str, Any]]:
    """`lsblk -J -b -o ...` -> the top-level devices (children kept as a nested list)."""
    doc = _load_json(text, "lsblk -J")
    if not isinstance(doc, dict) or not isinstance(doc.get("blockdevices"), list):
        raise ValueError("lsblk -J: expected {'blockdevices': [...]}")
    return list(doc["blockdevices"])


def _strip(value: Any) -> Optional[str]:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_nvme_list(text: str) -> List[Dict[str, Any]]:
    """`nvme list -o json`, old flat layout (nvme-cli 1.x/2.0-2.10) or new nested (>= 2.11).

    Returns one entry per namespace: device, controller, model, serial, firmware, capacity_bytes.
    """
    doc = _load_json(text, "nvme list -o json")
    if not isinstance(doc, dict) or "Devices" not in doc:
        raise ValueError("nvme list -o json: expected {'Devices': [...]}")
    out: List[Dict[str, Any]] = []
    for dev in doc["Devices"] or []:
        if "Subsystems" in dev:
            for subsys in dev["Subsystems"] or []:
                for ctrl in subsys.get("Controllers") or []:
                    namespaces = list(ctrl.get("Namespaces") or []) + list(subsys.get("Namespaces") or [])
                    for ns in namespaces:
                        name = str(ns.get("NameSpace", ""))
                        out.append(
                            {
                                "device": name if name.startswith("/dev/") else "/dev/" + name,
                                "controller": ctrl.get("Controller"),
                                "model": _strip(ctrl.get("ModelNumber")),
                                "serial": _strip(ctrl.get("SerialNumber")),
                                "firmware": _strip(ctrl.get("Firmware")),
                                "capacity_bytes": _int(ns.get("PhysicalSize")),
                                "pci_address": ctrl.get("Address"),
                            }
                        )
        else:
            path = str(dev.get("DevicePath", ""))
            ctrl = re.match(r"/dev/(nvme\d+)", path)
            out.append(
                {
                    "device": path,
                    "controller": ctrl.group(1) if ctrl else None,
                    "model": _strip(dev.get("ModelNumber")),
                    "serial": _strip(dev.get("SerialNumber")),
                    "firmware": _strip(dev.get("Firmware")),
                    "capacity_bytes": _int(dev.get("PhysicalSize")),
                    "pci_address": None,
                }
            )
    return out


def parse_nvme_id_ctrl(text: str) -> Dict[str, Any]:
    """`nvme id-ctrl -o json` -> model, serial, firmware and the temperature thresholds in Celsius."""
    doc = _load_json(text, "nvme id-ctrl -o json")
    if not isinstance(doc, dict) or "sn" not in doc:
        raise ValueError("nvme id-ctrl -o json: no 'sn' field")
    wctemp, cctemp = _int(doc.get("wctemp")), _int(doc.get("cctemp"))
    return {
        "model": _strip(doc.get("mn")),
        "serial": _strip(doc.get("sn")),
        "firmware": _strip(doc.get("fr")),
        "capacity_bytes": _int(doc.get("tnvmcap")),
        "warning_temp_c": wctemp - 273 if wctemp else None,  # Kelvin in the spec
        "critical_temp_c": cctemp - 273 if cctemp else None,
    }


def parse_link_speed(text: Optional[str]) -> Optional[int]:
    """sysfs `current_link_speed` ("32.0 GT/s PCIe", "8 GT/s", "Unknown") -> PCIe generation."""
    if not text:
        return None
    m = re.match(r"^\s*([\d.]+)\s*GT/s", text)
    return _GEN_BY_GTS.get(float(m.group(1))) if m else None


def parse_os_release(text: str) -> Optional[str]:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None
