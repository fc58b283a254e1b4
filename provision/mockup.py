"""Redfish mockup trees built from the project's own profiles, in the layouts real vendors serve.

`build_tree` is pure: (Profile, Host, style, faults) -> {resource path: JSON document}. `write_tree`
lays it out the way sushy-static serves it (short form: `<dir>/index.json` is /redfish/v1).

Styles differ where real BMCs differ:
- supermicro: Systems/1; GPUs are Processors linked to Chassis/1/PCIeDevices; every DIMM slot listed
  (empty ones Absent); Storage with StorageControllers[].MemberId; legacy Power/Thermal.
- dell: iDRAC ids (System.Embedded.1, DIMM.Socket.A1, Video.Slot.N-1); only populated DIMMs listed;
  PCIeDevices as an array of links in the System, GPUs matched to them by serial; RAID volume.
- dmtf: current DMTF shapes (public-tower, HGX): StorageControllers[].Id without MemberId, drives under
  the Chassis, PCIe functions under Links, PowerSubsystem/ThermalSubsystem only, and the GPUs on a
  baseboard that is a System of its own (no Boot).
Faults inject the failures inspection must catch: a missing DIMM, a GPU trained low, a wrong drive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from provision.hosts import Host
from provision.profile import DriveInterface, Profile

ROOT = "/redfish/v1"
Doc = dict[str, Any]


class Style(StrEnum):
    supermicro = "supermicro"
    dell = "dell"
    dmtf = "dmtf"


@dataclass(frozen=True)
class Faults:
    missing_dimm: int | None = None  # index into the populated DIMMs: that one is gone
    gpu_link: tuple[int, int, int] | None = None  # (gpu index, gen, width) it trained at
    drive_bytes: tuple[int, int] | None = None  # (drive index, capacity it reports)
    simple_storage_only: bool = False  # no Storage resource, only the older SimpleStorage


def _ref(path: str) -> Doc:
    return {"@odata.id": path}


def _coll(tree: dict[str, Doc], path: str, name: str, members: list[str]) -> None:
    tree[path] = {
        "@odata.id": path,
        "Name": name,
        "Members@odata.count": len(members),
        "Members": [_ref(m) for m in members],
    }


def _ok(state: str = "Enabled") -> Doc:
    return {"State": state, "Health": "OK" if state == "Enabled" else None}


def _populated_channels(per_socket: int, channels: int) -> list[int]:
    # Spread evenly, as the board manuals' population tables do (1, 4, 8, 12 of 12 channels).
    return sorted({round(i * channels / per_socket) for i in range(per_socket)})


class _Builder:
    def __init__(self, profile: Profile, host: Host, style: Style, faults: Faults) -> None:
        self.p, self.h, self.style, self.f = profile, host, style, faults
        self.tree: dict[str, Doc] = {}
        self.tag = "".join(part[0] for part in host.name.split("-")).upper()
        dell = style is Style.dell
        self.sys_id = "System.Embedded.1" if dell else "1"
        self.chassis_id = "System.Embedded.1" if dell else "1"
        self.sys = f"{ROOT}/Systems/{self.sys_id}"
        self.chassis = f"{ROOT}/Chassis/{self.chassis_id}"
        self.pcie: list[str] = []

    def build(self) -> dict[str, Doc]:
        system: Doc = {
            "@odata.id": self.sys,
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "Id": self.sys_id,
            "Name": "System",
            "Manufacturer": {"dell": "Dell Inc.", "dmtf": "Contoso"}.get(self.style.value, "Supermicro"),
            "Model": self.p.chassis.model,
            "SerialNumber": f"S{self.tag}0001",
            "UUID": "00000000-0000-4000-8000-" + self.tag.encode().hex().ljust(12, "0")[:12],
            "BiosVersion": "3.1",
            "PowerState": "Off",
            "Status": _ok(),
            "Boot": {
                "BootSourceOverrideEnabled": "Disabled",
                "BootSourceOverrideTarget": "None",
                "BootSourceOverrideMode": "UEFI",
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd", "UsbCd"],
            },
            "MemorySummary": {"TotalSystemMemoryGiB": self.p.memory.total_gib},
            "Processors": _ref(f"{self.sys}/Processors"),
            "Memory": _ref(f"{self.sys}/Memory"),
            "EthernetInterfaces": _ref(f"{self.sys}/EthernetInterfaces"),
            "Links": {"Chassis": [_ref(self.chassis)], "ManagedBy": [_ref(f"{ROOT}/Managers/1")]},
        }
        if self.f.simple_storage_only:
            system["SimpleStorage"] = _ref(f"{self.sys}/SimpleStorage")
        else:
            system["Storage"] = _ref(f"{self.sys}/Storage")
        self.tree[self.sys] = system
        systems = [self.sys]
        self._cpus()
        gpu_system = self._gpus()
        if gpu_system:
            systems.append(gpu_system)
        self._memory()
        self._storage()
        self._nics()
        self._chassis()
        if self.style is Style.dell:
            system["PCIeDevices"] = [_ref(p) for p in self.pcie]
        elif self.style is Style.supermicro:
            system["PCIeDevices"] = _ref(f"{self.chassis}/PCIeDevices")
        _coll(self.tree, f"{ROOT}/Systems", "Systems", systems)
        self._service(systems)
        return self.tree

    def _cpus(self) -> None:
        cpu = self.p.cpu
        members = []
        for s in range(cpu.sockets):
            cid = f"CPU.Socket.{s + 1}" if self.style is Style.dell else f"CPU{s + 1}"
            path = f"{self.sys}/Processors/{cid}"
            members.append(path)
            self.tree[path] = {
                "@odata.id": path,
                "Id": cid,
                "Socket": f"P{s}" if self.style is Style.supermicro else f"CPU {s + 1}",
                "ProcessorType": "CPU",
                "ProcessorArchitecture": "x86",
                "InstructionSet": "x86-64",
                "Manufacturer": "Advanced Micro Devices, Inc.",
                "Model": cpu.model,
                "MaxSpeedMHz": cpu.boost_mhz,
                "TotalCores": cpu.cores_per_socket,
                "TotalThreads": cpu.cores_per_socket * cpu.threads_per_core,
                "ProcessorId": {
                    "VendorId": cpu.vendor,
                    "EffectiveFamily": hex(cpu.cpuid_family),
                    **({"EffectiveModel": hex(cpu.cpuid_model)} if cpu.cpuid_model is not None else {}),
                },
                "Status": _ok(),
            }
        self._cpu_members = members
        _coll(self.tree, f"{self.sys}/Processors", "Processors", members)

    def _pcie_device(
        self, did: str, name: str, serial: str, gen: int, width: int, max_gen: int, max_width: int, func: Doc
    ) -> str:
        path = f"{self.chassis}/PCIeDevices/{did}"
        fpath = f"{path}/PCIeFunctions/1"
        doc: Doc = {
            "@odata.id": path,
            "Id": did,
            "Name": name,
            "Manufacturer": func.pop("_vendor", None),
            "Model": name,
            "SerialNumber": serial,
            "DeviceType": "SingleFunction",
            "PCIeInterface": {
                "PCIeType": f"Gen{gen}",
                "MaxPCIeType": f"Gen{max_gen}",
                "LanesInUse": width,
                "MaxLanes": max_width,
            },
            "Slot": {"Location": {"PartLocation": {"ServiceLabel": f"SLOT{len(self.pcie) + 1}"}}},
            "Status": _ok(),
        }
        if self.style is Style.dmtf:
            doc["Links"] = {"PCIeFunctions": [_ref(fpath)]}
        else:
            doc["PCIeFunctions"] = _ref(f"{path}/PCIeFunctions")
            _coll(self.tree, f"{path}/PCIeFunctions", "PCIe Functions", [fpath])
        self.tree[path] = doc
        self.tree[fpath] = {
            "@odata.id": fpath,
            "Id": "1",
            "FunctionId": 0,
            "FunctionType": "Physical",
            **func,
        }
        self.pcie.append(path)
        return path

    def _gpus(self) -> str | None:
        g = self.p.gpus
        if g is None:
            return None
        baseboard = self.style is Style.dmtf
        gsys = f"{ROOT}/Systems/HGX_Baseboard_0" if baseboard else self.sys
        members = []
        for i in range(g.count):
            gen, width = g.pcie_gen, g.pcie_width
            if self.f.gpu_link and self.f.gpu_link[0] == i:
                gen, width = self.f.gpu_link[1], self.f.gpu_link[2]
            serial = f"GPU{self.tag}{i:03d}"
            gid = {"dell": f"Video.Slot.{i + 1}-1", "dmtf": f"GPU_SXM_{i + 1}"}.get(
                self.style.value, f"GPU{i + 1}"
            )
            dev = self._pcie_device(
                f"GPU{i + 1}",
                g.name,
                serial,
                gen,
                width,
                g.pcie_gen,
                g.pcie_width,
                {
                    "_vendor": "NVIDIA",
                    "DeviceClass": "DisplayController",
                    "VendorId": g.pci_vendor_id,
                    "DeviceId": g.pci_device_id.upper().replace("0X", "0x"),
                    "ClassCode": "0x030200",
                },
            )
            path = f"{gsys}/Processors/{gid}"
            doc: Doc = {
                "@odata.id": path,
                "Id": gid,
                "ProcessorType": "GPU",
                "Manufacturer": "NVIDIA",
                "Model": g.name,
                "SerialNumber": serial,
                "Status": _ok(),
            }
            if self.style is not Style.dell:  # iDRAC does not link them; matched by serial
                doc["Links"] = {"PCIeDevice": _ref(dev)}
            self.tree[path] = doc
            members.append(path)
        if not baseboard:
            _coll(self.tree, f"{self.sys}/Processors", "Processors", self._cpu_members + members)
            return None
        self.tree[gsys] = {
            "@odata.id": gsys,
            "Id": "HGX_Baseboard_0",
            "Name": "GPU baseboard",
            "Manufacturer": "NVIDIA",
            "Processors": _ref(f"{gsys}/Processors"),
            "Status": _ok(),
        }
        _coll(self.tree, f"{gsys}/Processors", "Processors", members)
        return gsys

    def _memory(self) -> None:
        cpu, mem = self.p.cpu, self.p.memory
        per_socket = mem.dimm_count // cpu.sockets
        used = _populated_channels(per_socket, cpu.dimm_slots_per_socket)
        members, n = [], 0
        for s in range(cpu.sockets):
            for c in range(cpu.dimm_slots_per_socket):
                letter = chr(ord("A") + c)
                populated = c in used
                if populated:
                    if self.f.missing_dimm == n:
                        populated = False
                    n += 1
                if self.style is Style.dell and not populated:
                    continue  # iDRAC lists only what is installed
                mid = {"dell": f"DIMM.Socket.{letter}{s + 1}", "dmtf": f"DIMM{s * 12 + c + 1}"}.get(
                    self.style.value, f"P{s + 1}-DIMM{letter}1"
                )
                path = f"{self.sys}/Memory/{mid}"
                members.append(path)
                doc: Doc = {
                    "@odata.id": path,
                    "Id": mid,
                    "Name": mid,
                    "DeviceLocator": f"P{s + 1}-DIMM{letter}1",
                    "MemoryLocation": {"Socket": s + 1, "Channel": c + 1, "Slot": 1},
                    "Status": _ok() if populated else {"State": "Absent"},
                }
                if populated:
                    doc.update(
                        {
                            "CapacityMiB": mem.dimm_size_gib * 1024,
                            "MemoryDeviceType": mem.type,
                            "BaseModuleType": mem.form,
                            "MemoryType": "DRAM",
                            "OperatingSpeedMhz": mem.configured_mts_expected,
                            "AllowedSpeedsMHz": [mem.rated_mts],
                            "Manufacturer": "Samsung",
                            "PartNumber": mem.part_number or "M321R4GA3EB0-CWM",
                            "SerialNumber": f"D{self.tag}{s}{c:02d}",
                            "RankCount": mem.ranks or 1,
                            "ErrorCorrection": "MultiBitECC" if mem.ecc else "NoECC",
                        }
                    )
                self.tree[path] = doc
        _coll(self.tree, f"{self.sys}/Memory", "Memory", members)

    def _drives(self) -> list[tuple[str, Doc]]:
        out, n = [], 0
        for cls in self.p.storage:
            for i in range(cls.count):
                nvme = cls.interface is DriveInterface.nvme
                size = cls.capacity_bytes
                if self.f.drive_bytes and self.f.drive_bytes[0] == n:
                    size = self.f.drive_bytes[1]
                serial = f"{'N' if nvme else 'S'}{self.tag}{n:03d}"
                did = {"dell": f"Disk.Bay.{n}-Enclosure.Internal.0-1"}.get(self.style.value, f"Disk{n}")
                doc = {
                    "Id": did,
                    "Name": f"{cls.role.value} drive {i}",
                    "Model": "MZQL23T8HCLS-00A07" if nvme else "MZ7L3960HCJR-00A07",
                    "SerialNumber": serial,
                    "CapacityBytes": size,
                    "Protocol": "NVMe" if nvme else "SATA",
                    "MediaType": "SSD",
                    "Revision": "GDC5902Q",
                    "Identifiers": [{"DurableNameFormat": "NAA", "DurableName": f"5002538{n:09x}"}],
                    "Status": _ok(),
                }
                out.append((cls.interface.value, doc))
                n += 1
        return out

    def _storage(self) -> None:
        drives = self._drives()
        if self.f.simple_storage_only:
            path = f"{self.sys}/SimpleStorage/1"
            self.tree[path] = {
                "@odata.id": path,
                "Id": "1",
                "Name": "Simple Storage Controller",
                "Devices": [
                    {
                        "Name": d["Name"],
                        "Model": d["Model"],
                        "CapacityBytes": d["CapacityBytes"],
                        "Status": _ok(),
                    }
                    for _, d in drives
                ],
            }
            _coll(self.tree, f"{self.sys}/SimpleStorage", "Simple Storage", [path])
            return
        names = {"dell": ("RAID.Integral.1-1", "CPU.1"), "dmtf": ("RAIDIntegrated", "NVMeSWRAID")}
        sata_id, nvme_id = names.get(self.style.value, ("HA-RAID", "NVMeSSD"))
        members = []
        for kind, sid in (("sata", sata_id), ("nvme", nvme_id)):
            mine = [d for k, d in drives if k == kind]
            if not mine:
                continue
            spath = f"{self.sys}/Storage/{sid}"
            members.append(spath)
            links = []
            for d in mine:
                base = f"{self.chassis}/Drives" if self.style is Style.dmtf else f"{spath}/Drives"
                dpath = f"{base}/{d['Id']}"
                self.tree[dpath] = {"@odata.id": dpath, **d}
                links.append(dpath)
            ctrl: Doc = {
                "Name": f"{sid} controller",
                "Model": sid,
                "FirmwareVersion": "1.0",
                "SupportedDeviceProtocols": ["SATA" if kind == "sata" else "NVMe"],
            }
            # Storage >= 1.x (DMTF public mockups) names controllers by Id; sushy expects MemberId.
            ctrl["Id" if self.style is Style.dmtf else "MemberId"] = "0"
            doc: Doc = {
                "@odata.id": spath,
                "Id": sid,
                "Name": sid,
                "StorageControllers": [ctrl],
                "Drives": [_ref(x) for x in links],
                "Drives@odata.count": len(links),
                "Status": _ok(),
            }
            boot = next((c for c in self.p.storage if c.raid), None)
            if kind == "sata" and boot and boot.raid and self.style is not Style.supermicro:
                vpath = f"{spath}/Volumes/1"
                doc["Volumes"] = _ref(f"{spath}/Volumes")
                self.tree[vpath] = {
                    "@odata.id": vpath,
                    "Id": "1",
                    "Name": "boot mirror",
                    "RAIDType": boot.raid.upper(),
                    "CapacityBytes": boot.capacity_bytes,
                    "Links": {"Drives": [_ref(x) for x in links]},
                }
                _coll(self.tree, f"{spath}/Volumes", "Volumes", [vpath])
            self.tree[spath] = doc
        _coll(self.tree, f"{self.sys}/Storage", "Storage", members)

    def _nics(self) -> None:
        speeds = {n.name: n.speed_gbps for n in self.p.network}
        macs = {i.name: i.mac for i in self.h.interfaces}
        members = []
        for k, nic in enumerate(self.p.network):
            mac = macs.get(nic.name) or f"3c:ec:ef:ff:{k:02x}:{len(self.tag):02x}"
            nid = {"dell": f"NIC.Slot.{k + 1}-1-1"}.get(self.style.value, str(k + 1))
            path = f"{self.sys}/EthernetInterfaces/{nid}"
            members.append(path)
            self.tree[path] = {
                "@odata.id": path,
                "Id": nid,
                "Name": nic.name,
                "MACAddress": mac.upper() if self.style is Style.dell else mac,
                "PermanentMACAddress": mac,
                "SpeedMbps": speeds[nic.name] * 1000,
                "LinkStatus": "LinkUp",
                "Status": _ok(),
            }
        _coll(self.tree, f"{self.sys}/EthernetInterfaces", "Ethernet Interfaces", members)

    def _chassis(self) -> None:
        draw = self.p.power.expected_draw_w
        doc: Doc = {
            "@odata.id": self.chassis,
            "Id": self.chassis_id,
            "Name": self.p.chassis.model,
            "Manufacturer": self.p.chassis.vendor,
            "Model": self.p.chassis.model,
            "PCIeDevices": _ref(f"{self.chassis}/PCIeDevices"),
            "Links": {"ComputerSystems": [_ref(self.sys)]},
        }
        temps = [("CPU1 Temp", 45.0, 100.0), ("System Temp", 30.0, 85.0)]
        if self.style is Style.dmtf:
            doc["PowerSubsystem"] = _ref(f"{self.chassis}/PowerSubsystem")
            doc["ThermalSubsystem"] = _ref(f"{self.chassis}/ThermalSubsystem")
            doc["Drives"] = _ref(f"{self.chassis}/Drives")
            ps = f"{self.chassis}/PowerSubsystem"
            self.tree[ps] = {"@odata.id": ps, "PowerSupplies": _ref(f"{ps}/PowerSupplies")}
            psu = f"{ps}/PowerSupplies/0"
            self.tree[psu] = {
                "@odata.id": psu,
                "Id": "0",
                "Name": "PSU0",
                "PowerCapacityWatts": 3000,
                "Metrics": _ref(f"{psu}/Metrics"),
            }
            self.tree[f"{psu}/Metrics"] = {
                "@odata.id": f"{psu}/Metrics",
                "InputPowerWatts": {"Reading": draw / 4},
            }
            _coll(self.tree, f"{ps}/PowerSupplies", "Power Supplies", [psu])
            ts = f"{self.chassis}/ThermalSubsystem"
            self.tree[ts] = {"@odata.id": ts, "ThermalMetrics": _ref(f"{ts}/ThermalMetrics")}
            self.tree[f"{ts}/ThermalMetrics"] = {
                "@odata.id": f"{ts}/ThermalMetrics",
                "TemperatureReadingsCelsius": [{"DeviceName": n, "Reading": r} for n, r, _ in temps],
            }
            _coll(
                self.tree,
                f"{self.chassis}/Drives",
                "Drives",
                [k for k in self.tree if k.startswith(f"{self.chassis}/Drives/")],
            )
        else:
            doc["Power"] = _ref(f"{self.chassis}/Power")
            doc["Thermal"] = _ref(f"{self.chassis}/Thermal")
            self.tree[f"{self.chassis}/Power"] = {
                "@odata.id": f"{self.chassis}/Power",
                "PowerControl": [
                    {
                        "MemberId": "0",
                        "Name": "System Power Control",
                        "PowerConsumedWatts": draw / 4,
                        "PowerCapacityWatts": 3000,
                    }
                ],
            }
            self.tree[f"{self.chassis}/Thermal"] = {
                "@odata.id": f"{self.chassis}/Thermal",
                "Temperatures": [
                    {"MemberId": str(i), "Name": n, "ReadingCelsius": r, "UpperThresholdCritical": c}
                    for i, (n, r, c) in enumerate(temps)
                ],
            }
        self.tree[self.chassis] = doc
        _coll(self.tree, f"{self.chassis}/PCIeDevices", "PCIe Devices", self.pcie)

    def _service(self, systems: list[str]) -> None:
        _coll(self.tree, f"{ROOT}/Chassis", "Chassis", [self.chassis])
        mgr = f"{ROOT}/Managers/1"
        self.tree[mgr] = {
            "@odata.id": mgr,
            "Id": "1",
            "Name": "BMC",
            "FirmwareVersion": "01.04.08",
            "Links": {"ManagerForServers": [_ref(s) for s in systems]},
        }
        _coll(self.tree, f"{ROOT}/Managers", "Managers", [mgr])
        fw = f"{ROOT}/UpdateService/FirmwareInventory"
        items = {"BMC": "01.04.08", "BIOS": "3.1"}
        if self.p.gpus:
            items["GPU0"] = "98.02.2E.00.05"
        paths = []
        for name, version in items.items():
            paths.append(f"{fw}/{name}")
            self.tree[f"{fw}/{name}"] = {
                "@odata.id": f"{fw}/{name}",
                "Id": name,
                "Name": name,
                "Version": version,
            }
        _coll(self.tree, fw, "Firmware Inventory", paths)
        self.tree[f"{ROOT}/UpdateService"] = {
            "@odata.id": f"{ROOT}/UpdateService",
            "FirmwareInventory": _ref(fw),
        }
        self.tree[ROOT] = {
            "@odata.id": f"{ROOT}/",
            "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.15.0",
            "UUID": self.tree[self.sys]["UUID"],
            "Systems": _ref(f"{ROOT}/Systems"),
            "Chassis": _ref(f"{ROOT}/Chassis"),
            "Managers": _ref(f"{ROOT}/Managers"),
            "UpdateService": _ref(f"{ROOT}/UpdateService"),
        }


def build_tree(
    profile: Profile, host: Host, style: Style = Style.supermicro, faults: Faults = Faults()
) -> dict[str, Doc]:
    return _Builder(profile, host, style, faults).build()


def write_tree(tree: dict[str, Doc], directory: Path) -> Path:
    """Write the short form sushy-static serves: <directory>/<path under /redfish/v1>/index.json."""
    for path, doc in tree.items():
        rel = path[len(ROOT) :].strip("/")
        target = directory / rel / "index.json" if rel else directory / "index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return directory
