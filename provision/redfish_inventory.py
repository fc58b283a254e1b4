"""Normalize a Redfish service's tree into `burnin.hardware.HardwareInventory(source="redfish")`.

No I/O here: the walker is handed `fetch(path) -> dict | None` (the adapter's GET; None for 404).
Every resource is read defensively, because vendors differ in where things live and what they
fill: Storage controllers by `Id` or `MemberId`, PCIe devices under the System (link or array) or
the Chassis, PCIe functions as a collection or under `Links`, legacy Power/Thermal or
PowerSubsystem/ThermalSubsystem, GPUs on a baseboard that is a System of its own. What the BMC does
not expose is recorded in `gaps` (area -> why), never guessed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from burnin.hardware import (
    Cpu,
    Dimm,
    Drive,
    Firmware,
    Gpu,
    HardwareInventory,
    Nic,
    PcieDevice,
    PowerReading,
    StorageController,
    SystemInfo,
    Temperature,
    Volume,
)
from provision.errors import BmcError

Doc = dict[str, Any]
Fetch = Callable[[str], Doc | None]
ROOT = "/redfish/v1"
GPU_CLASSES = {"DisplayController", "ProcessingAccelerators"}


def _link(doc: Doc | None, key: str) -> str | None:
    value = (doc or {}).get(key)
    if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
        return str(value["@odata.id"])
    return None


def _links(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v["@odata.id"]) for v in value if isinstance(v, dict) and "@odata.id" in v]
    if isinstance(value, dict) and "@odata.id" in value:
        return [str(value["@odata.id"])]
    return []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*", value)
        if m:
            return int(m.group(1), 0)
    return None


def _gen(value: Any) -> int | None:
    m = re.fullmatch(r"Gen(\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _state(doc: Doc) -> str | None:
    status = doc.get("Status")
    return _str(status.get("State")) if isinstance(status, dict) else None


def _health(doc: Doc) -> str | None:
    status = doc.get("Status")
    return _str(status.get("Health")) if isinstance(status, dict) else None


def _hexid(value: Any) -> str | None:
    n = _int(value)
    return None if n is None else f"0x{n:04x}"


class Walker:
    """One inspection: follows links from the service root and fills the inventory."""

    def __init__(self, fetch: Fetch, host_system: str | None = None, now: Callable[[], float] = time.time):
        self._fetch = fetch
        self.host_system = host_system
        self.inv = HardwareInventory(source="redfish", collected_at=now())
        self.pcie_paths: list[str] = []
        self._gpu_links: dict[str, str | None] = {}
        self._slots: dict[str, str | None] = {}

    def get(self, path: str | None, area: str) -> Doc | None:
        """GET that turns an HTTP error on one resource into a gap; a dead BMC still raises."""
        if not path:
            return None
        try:
            return self._fetch(path)
        except BmcError as exc:
            if getattr(exc, "status", None) is None:
                raise
            self.gap(area, f"{path}: {exc}")
            return None

    def gap(self, area: str, why: str) -> None:
        self.inv.gaps[area] = f"{self.inv.gaps[area]}; {why}" if area in self.inv.gaps else why

    def members(self, path: str | None, area: str) -> list[Doc]:
        coll = self.get(path, area)
        out = []
        for member in _links((coll or {}).get("Members")):
            doc = self.get(member, area)
            if doc is not None:
                out.append(doc)
        return out

    def run(self) -> HardwareInventory:
        root = self.get(f"{ROOT}/", "service") or {}
        systems = [d for d in self.members(_link(root, "Systems") or f"{ROOT}/Systems", "systems")]
        if not systems:
            self.gap("systems", "the BMC lists no systems")
            return self.inv
        host = next((s for s in systems if s.get("@odata.id") == self.host_system), None)
        host = host or next((s for s in systems if isinstance(s.get("Boot"), dict)), systems[0])
        self.system(host)
        for chassis in self.members(_link(root, "Chassis") or f"{ROOT}/Chassis", "chassis"):
            self.chassis(chassis)
        for doc in systems:  # a GPU baseboard is a System of its own
            self.processors(doc)
            if doc is host:
                self.memory(doc)
                self.storage(doc)
                self.nics(doc)
            self.system_pcie(doc)
        self.finish_pcie()
        self.firmware(root)
        return self.inv

    def system(self, doc: Doc) -> None:
        boot = doc.get("Boot") if isinstance(doc.get("Boot"), dict) else {}
        summary = doc.get("MemorySummary") if isinstance(doc.get("MemorySummary"), dict) else {}
        gib = summary.get("TotalSystemMemoryGiB")
        self.inv.memory_total_mib = int(gib * 1024) if isinstance(gib, (int, float)) else None
        self.inv.system = SystemInfo(
            manufacturer=_str(doc.get("Manufacturer")),
            model=_str(doc.get("Model")),
            serial=_str(doc.get("SerialNumber")),
            uuid=_str(doc.get("UUID")),
            bios_version=_str(doc.get("BiosVersion")),
            power_state=_str(doc.get("PowerState")),
            boot_target=_str(boot.get("BootSourceOverrideTarget")),
            boot_enabled=_str(boot.get("BootSourceOverrideEnabled")),
            boot_mode=_str(boot.get("BootSourceOverrideMode")),
        )
        if not boot:
            self.gap("boot", f"{doc.get('@odata.id')}: no Boot property")

    def processors(self, sysdoc: Doc) -> None:
        path = _link(sysdoc, "Processors")
        if path is None:
            if isinstance(sysdoc.get("Boot"), dict):
                self.gap("processors", f"{sysdoc.get('@odata.id')}: no Processors link")
            return
        threads = 0
        for doc in self.members(path, "processors"):
            if _state(doc) == "Absent":
                continue
            kind = doc.get("ProcessorType")
            if kind == "CPU":
                pid = doc.get("ProcessorId") if isinstance(doc.get("ProcessorId"), dict) else {}
                cpu = Cpu(
                    socket=_str(doc.get("Socket")) or str(doc.get("Id")),
                    model=_str(doc.get("Model")),
                    vendor=_str(pid.get("VendorId")) or _str(doc.get("Manufacturer")),
                    cores=_int(doc.get("TotalCores")),
                    threads=_int(doc.get("TotalThreads")),
                    max_speed_mhz=_int(doc.get("MaxSpeedMHz")),
                    family=_int(pid.get("EffectiveFamily")),
                    model_id=_int(pid.get("EffectiveModel")),
                )
                threads += cpu.threads or 0
                self.inv.cpus.append(cpu)
            elif kind == "GPU":
                links = doc.get("Links") if isinstance(doc.get("Links"), dict) else {}
                self._gpu_links[str(doc.get("Id"))] = (_links(links.get("PCIeDevice")) or [None])[0]
                self.inv.gpus.append(
                    Gpu(
                        index=str(doc.get("Id")),
                        name=_str(doc.get("Model")),
                        serial=_str(doc.get("SerialNumber")),
                    )
                )
        if threads:
            self.inv.logical_cpus = (self.inv.logical_cpus or 0) + threads

    def memory(self, sysdoc: Doc) -> None:
        path = _link(sysdoc, "Memory")
        docs = self.members(path, "memory") if path else []
        if not docs:
            self.gap("memory", f"{sysdoc.get('@odata.id')}: no Memory members (DIMMs not exposed)")
        for doc in docs:
            if doc.get("MemoryType") not in (None, "DRAM"):
                continue  # NVDIMM/Optane/GPU HBM listed as Memory are not DIMMs of the host
            loc = doc.get("MemoryLocation") if isinstance(doc.get("MemoryLocation"), dict) else {}
            speeds = [s for s in doc.get("AllowedSpeedsMHz") or [] if isinstance(s, int)]
            ecc = doc.get("ErrorCorrection")
            self.inv.dimms.append(
                Dimm(
                    locator=_str(doc.get("DeviceLocator")) or str(doc.get("Id")),
                    present=_state(doc) != "Absent",
                    size_mib=_int(doc.get("CapacityMiB")),
                    type=_str(doc.get("MemoryDeviceType")),
                    rated_mts=max(speeds) if speeds else None,
                    # Redfish names it MHz, but BMCs report the data rate (4800 for DDR5-4800).
                    configured_mts=_int(doc.get("OperatingSpeedMhz")),
                    manufacturer=_str(doc.get("Manufacturer")),
                    part_number=_str(doc.get("PartNumber")),
                    serial=_str(doc.get("SerialNumber")),
                    rank=_int(doc.get("RankCount")),
                    ecc=None if ecc is None else ecc != "NoECC",
                    socket=_int(loc.get("Socket")),
                    channel=None if loc.get("Channel") is None else str(loc.get("Channel")),
                    health=_health(doc),
                )
            )

    def storage(self, sysdoc: Doc) -> None:
        path = _link(sysdoc, "Storage")
        stores = self.members(path, "storage") if path else []
        for doc in stores:
            sid = str(doc.get("Id"))
            for ctrl in doc.get("StorageControllers") or []:
                if not isinstance(ctrl, dict):
                    continue
                # Storage >= 1.x names controllers by Id; older ones by MemberId (sushy needs it).
                name = _str(ctrl.get("MemberId")) or _str(ctrl.get("Id")) or "0"
                protocols = [str(p) for p in ctrl.get("SupportedDeviceProtocols") or []]
                self.inv.storage_controllers.append(
                    StorageController(
                        name=f"{sid}/{name}",
                        model=_str(ctrl.get("Model")),
                        firmware=_str(ctrl.get("FirmwareVersion")),
                        protocols=protocols,
                    )
                )
            for dpath in _links(doc.get("Drives")):
                drive = self.get(dpath, "drives")
                if drive is not None:
                    self.inv.drives.append(self._drive(drive))
            for vol in self.members(_link(doc, "Volumes"), "volumes"):
                links = vol.get("Links") if isinstance(vol.get("Links"), dict) else {}
                self.inv.volumes.append(
                    Volume(
                        name=f"{sid}/{vol.get('Id')}",
                        raid_type=_str(vol.get("RAIDType")) or _str(vol.get("VolumeType")),
                        capacity_bytes=_int(vol.get("CapacityBytes")),
                        drives=[p.rsplit("/", 1)[-1] for p in _links(links.get("Drives"))],
                    )
                )
        if stores:
            return
        simple = self.members(_link(sysdoc, "SimpleStorage"), "storage")
        for doc in simple:
            for i, dev in enumerate(doc.get("Devices") or []):
                if isinstance(dev, dict) and _state(dev) != "Absent":
                    self.inv.drives.append(
                        Drive(
                            name=_str(dev.get("Name")) or f"{doc.get('Id')}/{i}",
                            model=_str(dev.get("Model")),
                            capacity_bytes=_int(dev.get("CapacityBytes")),
                            health=_health(dev),
                        )
                    )
        if simple:
            self.gap("storage", "only SimpleStorage is exposed: no drive protocol, serial or WWN")
        else:
            self.gap("storage", f"{sysdoc.get('@odata.id')}: neither Storage nor SimpleStorage is exposed")

    def _drive(self, doc: Doc) -> Drive:
        wwn = None
        for ident in doc.get("Identifiers") or []:
            if isinstance(ident, dict) and ident.get("DurableNameFormat") in ("NAA", "EUI", "NGUID"):
                wwn = _str(ident.get("DurableName"))
        return Drive(
            name=str(doc.get("Id")),
            protocol=_str(doc.get("Protocol")),
            media=_str(doc.get("MediaType")),
            model=_str(doc.get("Model")),
            serial=_str(doc.get("SerialNumber")),
            wwn=wwn,
            capacity_bytes=_int(doc.get("CapacityBytes")),
            firmware=_str(doc.get("Revision")),
            health=_health(doc),
        )

    def nics(self, sysdoc: Doc) -> None:
        path = _link(sysdoc, "EthernetInterfaces")
        docs = self.members(path, "nics") if path else []
        if not docs:
            self.gap("nics", f"{sysdoc.get('@odata.id')}: no EthernetInterfaces")
        for doc in docs:
            link = doc.get("LinkStatus")
            mac = _str(doc.get("MACAddress")) or _str(doc.get("PermanentMACAddress"))
            self.inv.nics.append(
                Nic(
                    name=_str(doc.get("Name")) or str(doc.get("Id")),
                    mac=mac.lower() if mac else None,
                    speed_mbps=_int(doc.get("SpeedMbps")),
                    link_up=None if link is None else link == "LinkUp",
                )
            )

    def system_pcie(self, sysdoc: Doc) -> None:
        value = sysdoc.get("PCIeDevices")
        if isinstance(value, list):  # an embedded array of links (iDRAC, public-tower)
            self.pcie_paths += _links(value)
        elif _link(sysdoc, "PCIeDevices"):
            self.pcie_paths += [
                str(d.get("@odata.id")) for d in self._pcie_members(_link(sysdoc, "PCIeDevices"))
            ]

    def _pcie_members(self, path: str | None) -> list[Doc]:
        coll = self.get(path, "pcie")
        return [{"@odata.id": p} for p in _links((coll or {}).get("Members"))]

    def chassis(self, doc: Doc) -> None:
        self.pcie_paths += [str(d["@odata.id"]) for d in self._pcie_members(_link(doc, "PCIeDevices"))]
        name = str(doc.get("Id"))
        power = self.get(_link(doc, "Power"), "power")
        if power is not None:
            for ctl in power.get("PowerControl") or []:
                if isinstance(ctl, dict):
                    self.inv.power.append(
                        PowerReading(
                            name=f"{name}/{_str(ctl.get('Name')) or ctl.get('MemberId')}",
                            watts=ctl.get("PowerConsumedWatts"),
                            capacity_w=ctl.get("PowerCapacityWatts"),
                        )
                    )
        elif _link(doc, "PowerSubsystem"):
            sub = self.get(_link(doc, "PowerSubsystem"), "power") or {}
            for psu in self.members(_link(sub, "PowerSupplies"), "power"):
                metrics = self.get(_link(psu, "Metrics"), "power") or {}
                reading = (
                    metrics.get("InputPowerWatts") if isinstance(metrics.get("InputPowerWatts"), dict) else {}
                )
                self.inv.power.append(
                    PowerReading(
                        name=f"{name}/{_str(psu.get('Name')) or psu.get('Id')}",
                        watts=reading.get("Reading"),
                        capacity_w=psu.get("PowerCapacityWatts"),
                    )
                )
        thermal = self.get(_link(doc, "Thermal"), "thermal")
        if thermal is not None:
            for t in thermal.get("Temperatures") or []:
                if isinstance(t, dict):
                    self.inv.temperatures.append(
                        Temperature(
                            name=f"{name}/{t.get('Name')}",
                            celsius=t.get("ReadingCelsius"),
                            upper_critical_c=t.get("UpperThresholdCritical"),
                        )
                    )
        elif _link(doc, "ThermalSubsystem"):
            sub = self.get(_link(doc, "ThermalSubsystem"), "thermal") or {}
            metrics = self.get(_link(sub, "ThermalMetrics"), "thermal") or {}
            for t in metrics.get("TemperatureReadingsCelsius") or []:
                if isinstance(t, dict):
                    label = _str(t.get("DeviceName")) or str(t.get("DataSourceUri"))
                    self.inv.temperatures.append(
                        Temperature(name=f"{name}/{label}", celsius=t.get("Reading"))
                    )

    def finish_pcie(self) -> None:
        by_path: dict[str, PcieDevice] = {}
        by_serial: dict[str, PcieDevice] = {}
        for path in dict.fromkeys(self.pcie_paths):  # ordered, unique
            doc = self.get(path, "pcie")
            if doc is None:
                continue
            links = doc.get("Links") if isinstance(doc.get("Links"), dict) else {}
            fpaths = _links(links.get("PCIeFunctions"))
            if not fpaths:
                fpaths = _links((self.get(_link(doc, "PCIeFunctions"), "pcie") or {}).get("Members"))
            func = next((f for f in (self.get(p, "pcie") for p in fpaths[:1]) if f), {})
            iface = doc.get("PCIeInterface") if isinstance(doc.get("PCIeInterface"), dict) else {}
            dev = PcieDevice(
                address=str(doc.get("Id")),
                vendor_id=_hexid(func.get("VendorId")),
                device_id=_hexid(func.get("DeviceId")),
                name=_str(doc.get("Model")) or _str(doc.get("Name")),
                device_class=_str(func.get("DeviceClass")),
                link_gen=_gen(iface.get("PCIeType")),
                link_width=_int(iface.get("LanesInUse")),
                max_link_gen=_gen(iface.get("MaxPCIeType")),
                max_link_width=_int(iface.get("MaxLanes")),
            )
            self.inv.pcie.append(dev)
            by_path[path] = dev
            if _str(doc.get("SerialNumber")):
                by_serial[str(doc["SerialNumber"])] = dev
            slot = ((doc.get("Slot") or {}).get("Location") or {}).get("PartLocation") or {}
            self._slots[path] = _str(slot.get("ServiceLabel"))
        self._merge_gpus(by_path, by_serial)

    def _merge_gpus(self, by_path: dict[str, PcieDevice], by_serial: dict[str, PcieDevice]) -> None:
        merged = []
        for gpu in self.inv.gpus:
            link = self._gpu_links.get(gpu.index)
            dev = by_path.get(link or "") or by_serial.get(gpu.serial or "")
            if dev is None:
                self.gap(
                    f"gpu:{gpu.index}",
                    "no PCIe device linked or matching its serial: link and PCI ids unknown",
                )
                merged.append(gpu)
                continue
            path = next((p for p, d in by_path.items() if d is dev), "")
            merged.append(
                Gpu(
                    **{
                        **gpu.__dict__,
                        "slot": self._slots.get(path),
                        "pci_device_id": dev.device_id,
                        "pcie_gen_current": dev.link_gen,
                        "pcie_width_current": dev.link_width,
                        "pcie_gen_max": dev.max_link_gen,
                        "pcie_width_max": dev.max_link_width,
                    }
                )
            )
        if not merged:  # BMCs that list GPUs only as PCIe devices
            for dev in self.inv.pcie:
                if dev.device_class in GPU_CLASSES and dev.vendor_id == "0x10de":
                    merged.append(
                        Gpu(
                            index=dev.address,
                            name=dev.name,
                            pci_device_id=dev.device_id,
                            pcie_gen_current=dev.link_gen,
                            pcie_width_current=dev.link_width,
                            pcie_gen_max=dev.max_link_gen,
                            pcie_width_max=dev.max_link_width,
                        )
                    )
            if merged:
                self.gap("gpus", "GPUs found only as PCIe devices: no Processor resources (serials unknown)")
        self.inv.gpus = merged

    def firmware(self, root: Doc) -> None:
        update = self.get(_link(root, "UpdateService"), "firmware")
        docs = self.members(_link(update, "FirmwareInventory"), "firmware") if update else []
        if not docs:
            self.gap("firmware", "no UpdateService/FirmwareInventory")
        for doc in docs:
            version = _str(doc.get("Version"))
            if version:
                self.inv.firmware.append(
                    Firmware(name=_str(doc.get("Name")) or str(doc.get("Id")), version=version)
                )
        for mgr in self.members(_link(root, "Managers"), "managers"):
            if _str(mgr.get("FirmwareVersion")) and self.inv.system.bmc_version is None:
                self.inv.system = SystemInfo(
                    **{**self.inv.system.__dict__, "bmc_version": mgr["FirmwareVersion"]}
                )


def collect_inventory(fetch: Fetch, host_system: str | None = None) -> HardwareInventory:
    return Walker(fetch, host_system).run()
