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
  baseboard that is a System of its own (no Boot), each carrying its own link (SystemInterface.PCIe)
  and listed with its HBM as a "DRAM" Memory of the host, as NVIDIA's HGX BMC serves them.
- hpe: iLO-style ids (proc1dimm1, "PROC 1 DIMM 1"); GPUs only as PCIe devices (no GPU Processor);
  no host EthernetInterfaces, which iLO shows only once its agent runs in the OS.
Faults inject the failures inspection must catch: a missing DIMM, a GPU trained low, a wrong drive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provision.model.hosts import Host
from provision.model.profile import DriveInterface, Profile
from tests.support.mockup_parts import ROOT, Doc, ServiceBuilder, Style, coll, ok, ref

__all__ = ["Faults", "Style", "build_tree", "write_tree"]


@dataclass(frozen=True)
class Faults:
    missing_dimm: int | None = None  # index into the populated DIMMs: that one is gone
    gpu_link: tuple[int, int, int] | None = None  # (gpu index, gen, width) it trained at
    drive_bytes: tuple[int, int] | None = None  # (drive index, capacity it reports)
    simple_storage_only: bool = False  # no Storage resource, only the older SimpleStorage
    psu_critical: int | None = None  # index into the 4 PSUs: that one reports Health Critical
    drive_offline: int | None = None  # index into the drives: UnavailableOffline, Health Critical


def _populated_channels(per_socket: int, channels: int) -> list[int]:
    # Spread evenly, as the board manuals' population tables do (1, 4, 8, 12 of 12 channels).
    return sorted({round(i * channels / per_socket) for i in range(per_socket)})


class _Builder(ServiceBuilder):
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
        self.hbm: list[str] = []

    def build(self) -> dict[str, Doc]:
        system: Doc = {
            "@odata.id": self.sys,
            "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
            "Id": self.sys_id,
            "Name": "System",
            "Manufacturer": {"dell": "Dell Inc.", "dmtf": "Contoso", "hpe": "HPE"}.get(
                self.style.value, "Supermicro"
            ),
            "Model": self.p.chassis.model,
            "SerialNumber": f"S{self.tag}0001",
            "UUID": "00000000-0000-4000-8000-" + self.tag.encode().hex().ljust(12, "0")[:12],
            "BiosVersion": "3.1",
            "PowerState": "Off",
            "Status": ok(),
            "Boot": {
                "BootSourceOverrideEnabled": "Disabled",
                "BootSourceOverrideTarget": "None",
                "BootSourceOverrideMode": "UEFI",
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd", "UsbCd"],
            },
            "MemorySummary": {"TotalSystemMemoryGiB": self.p.memory.total_gib},
            "Processors": ref(f"{self.sys}/Processors"),
            "Memory": ref(f"{self.sys}/Memory"),
            "EthernetInterfaces": ref(f"{self.sys}/EthernetInterfaces"),
            "Links": {"Chassis": [ref(self.chassis)], "ManagedBy": [ref(f"{ROOT}/Managers/1")]},
        }
        if self.f.simple_storage_only:
            system["SimpleStorage"] = ref(f"{self.sys}/SimpleStorage")
        else:
            system["Storage"] = ref(f"{self.sys}/Storage")
        self.tree[self.sys] = system
        systems = [self.sys]
        self._cpus()
        gpu_system = self._gpus()
        if gpu_system:
            systems.append(gpu_system)
        self._memory()
        self._storage()
        self.nic_resources()
        self.chassis_resources(systems)
        if self.style is Style.dell:
            system["PCIeDevices"] = [ref(p) for p in self.pcie]
        elif self.style in (Style.supermicro, Style.hpe):
            system["PCIeDevices"] = ref(f"{self.chassis}/PCIeDevices")
        coll(self.tree, f"{ROOT}/Systems", "Systems", systems)
        self.service_resources(systems)
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
                "Status": ok(),
            }
        self._cpu_members = members
        coll(self.tree, f"{self.sys}/Processors", "Processors", members)

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
            "Status": ok(),
        }
        if self.style is Style.dmtf:
            doc["Links"] = {"PCIeFunctions": [ref(fpath)]}
        else:
            doc["PCIeFunctions"] = ref(f"{path}/PCIeFunctions")
            coll(self.tree, f"{path}/PCIeFunctions", "PCIe Functions", [fpath])
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
                "FirmwareVersion": "98.02.2E.00.05",  # the VBIOS, as Processor.FirmwareVersion
                "Status": ok(),
            }
            if self.style is Style.supermicro:
                doc["Links"] = {"PCIeDevice": ref(dev)}
            elif self.style is Style.dmtf:
                # Processor >= 1.8 as NVIDIA's HGX BMC serves it: the link on the GPU itself, the
                # PCI ids through Links.PCIeFunctions, the HBM as a "DRAM" Memory of the host.
                doc["Links"] = {"PCIeFunctions": [ref(f"{dev}/PCIeFunctions/1")]}
                doc["SystemInterface"] = {
                    "InterfaceType": "PCIe",
                    "PCIe": {"PCIeType": f"Gen{gen}", "MaxPCIeType": f"Gen{g.pcie_gen}",
                             "LanesInUse": width, "MaxLanes": g.pcie_width},
                }  # fmt: skip
                doc["Location"] = {
                    "PartLocation": {"LocationType": "Embedded", "ServiceLabel": f"SXM{i + 1}"}
                }
                doc["MemorySummary"] = {"TotalMemorySizeMiB": g.memory_mib, "ECCModeEnabled": True}
                hbm = f"{self.sys}/Memory/GPU_{i + 1}_DRAM_0"
                self.tree[hbm] = {
                    "@odata.id": hbm, "Id": f"GPU_{i + 1}_DRAM_0", "Name": "DIMM Slot", "MemoryType": "DRAM",
                    "MemoryDeviceType": "HBM", "BaseModuleType": "RDIMM", "CapacityMiB": g.memory_mib,
                    "Status": ok(),
                }  # fmt: skip
                self.hbm.append(hbm)
            # iDRAC does not link them at all: matched to their PCIe device by serial.
            if self.style is not Style.hpe:  # iLO lists GPUs only as PCIe devices
                self.tree[path] = doc
                members.append(path)
        if not baseboard:
            coll(self.tree, f"{self.sys}/Processors", "Processors", self._cpu_members + members)
            return None
        self.tree[gsys] = {
            "@odata.id": gsys,
            "Id": "HGX_Baseboard_0",
            "Name": "GPU baseboard",
            "Manufacturer": "NVIDIA",
            "Processors": ref(f"{gsys}/Processors"),
            "Status": ok(),
        }
        coll(self.tree, f"{gsys}/Processors", "Processors", members)
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
                mid = {
                    "dell": f"DIMM.Socket.{letter}{s + 1}",
                    "dmtf": f"DIMM{s * 12 + c + 1}",
                    "hpe": f"proc{s + 1}dimm{c + 1}",
                }.get(self.style.value, f"P{s + 1}-DIMM{letter}1")
                path = f"{self.sys}/Memory/{mid}"
                members.append(path)
                doc: Doc = {
                    "@odata.id": path,
                    "Id": mid,
                    "Name": mid,
                    "DeviceLocator": f"PROC {s + 1} DIMM {c + 1}"
                    if self.style is Style.hpe
                    else f"P{s + 1}-DIMM{letter}1",
                    "MemoryLocation": {"Socket": s + 1, "Channel": c + 1, "Slot": 1},
                    "Status": ok() if populated else {"State": "Absent"},
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
        coll(self.tree, f"{self.sys}/Memory", "Memory", members + self.hbm)

    def _drives(self) -> list[tuple[str, Doc]]:
        out, n = [], 0
        for cls in self.p.storage:
            for i in range(cls.count):
                nvme = cls.interface is DriveInterface.nvme
                size = cls.capacity_bytes
                if self.f.drive_bytes and self.f.drive_bytes[0] == n:
                    size = self.f.drive_bytes[1]
                # The drives the host's inventory names by serial/WWN are the ones the BMC shows.
                listed = self.h.boot_disks if cls.role.value == "boot" else self.h.scratch_disks
                known = listed[i] if i < len(listed) else None
                serial = (known and known.serial) or f"{'N' if nvme else 'S'}{self.tag}{n:03d}"
                wwn = (known and known.wwn) or f"0x5002538{n:09x}"
                model = (known and known.model) or ("MZQL23T8HCLS-00A07" if nvme else "MZ7L3960HCJR-00A07")
                did = {"dell": f"Disk.Bay.{n}-Enclosure.Internal.0-1"}.get(self.style.value, f"Disk{n}")
                doc = {
                    "Id": did,
                    "Name": f"{cls.role.value} drive {i}",
                    "Model": model,
                    "SerialNumber": serial,
                    "CapacityBytes": size,
                    "Protocol": "NVMe" if nvme else "SATA",
                    "MediaType": "SSD",
                    "Revision": "GDC5902Q",
                    "Identifiers": [{"DurableNameFormat": "NAA", "DurableName": wwn.removeprefix("0x")}],
                    "Status": ok() if self.f.drive_offline != n else {"State": "UnavailableOffline",
                                                                      "Health": "Critical"},
                }  # fmt: skip
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
                        "Status": ok(),
                    }
                    for _, d in drives
                ],
            }
            coll(self.tree, f"{self.sys}/SimpleStorage", "Simple Storage", [path])
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
                "Drives": [ref(x) for x in links],
                "Drives@odata.count": len(links),
                "Status": ok(),
            }
            boot = next((c for c in self.p.storage if c.raid), None)
            if kind == "sata" and boot and boot.raid and self.style is not Style.supermicro:
                vpath = f"{spath}/Volumes/1"
                doc["Volumes"] = ref(f"{spath}/Volumes")
                self.tree[vpath] = {
                    "@odata.id": vpath,
                    "Id": "1",
                    "Name": "boot mirror",
                    "RAIDType": boot.raid.upper(),
                    "CapacityBytes": boot.capacity_bytes,
                    "Links": {"Drives": [ref(x) for x in links]},
                }
                coll(self.tree, f"{spath}/Volumes", "Volumes", [vpath])
            self.tree[spath] = doc
        coll(self.tree, f"{self.sys}/Storage", "Storage", members)


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
