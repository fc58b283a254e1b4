"""Normalize a Redfish service's tree into `burnin.hardware.HardwareInventory(source="redfish")`.

No I/O here: the walker is handed `fetch(path) -> dict | None` (the adapter's GET; None for 404).
Every resource is read defensively, because vendors differ in where things live and what they
fill: Storage controllers by `Id` or `MemberId`, PCIe devices under the System (link or array) or
the Chassis, PCIe functions as a collection or under `Links`, legacy Power/Thermal or
PowerSubsystem/ThermalSubsystem, GPUs on a baseboard that is a System of its own. What the BMC does
not expose is recorded in `gaps` (area -> why), never guessed.
"""

from __future__ import annotations

from burnin.hardware import (
    Cpu,
    Dimm,
    Drive,
    Gpu,
    HardwareInventory,
    Nic,
    PcieDevice,
    StorageController,
    SystemInfo,
    Volume,
)
from provision.bmc.reader import (
    ChassisReader,
    Doc,
    Fetch,
    gen_of,
    health_of,
    hexid_of,
    int_of,
    obj_of,
    ref_of,
    refs_of,
    state_of,
    str_of,
)

ROOT = "/redfish/v1"
GPU_CLASSES = {"DisplayController", "ProcessingAccelerators"}


class Walker(ChassisReader):
    """One inspection: follows links from the service root and fills the inventory."""

    def run(self) -> HardwareInventory:
        root = self.get(f"{ROOT}/", "service") or {}
        coll = self.get(ref_of(root, "Systems") or f"{ROOT}/Systems", "systems")
        listed = [p.rstrip("/") for p in refs_of((coll or {}).get("Members"))]
        if not listed:
            self.gap("systems", "the BMC lists no systems")
            return self.inv
        host = self._host(listed)
        if host is None:
            return self.inv
        self.system(host)
        # The chassis the host's System names (a BMC fronting several nodes lists them all);
        # every chassis only where the System names none.
        own = refs_of(obj_of(host, "Links").get("Chassis"))
        if own:
            chassis = [d for d in (self.get(p, "chassis") for p in dict.fromkeys(own)) if d is not None]
        else:
            chassis = self.members(ref_of(root, "Chassis") or f"{ROOT}/Chassis", "chassis")
        for doc in chassis:
            self.chassis(doc)
        linked = self._linked_systems(host, chassis, listed)
        read = {str(host.get("@odata.id")).rstrip("/")} | set(linked)
        skipped = [p for p in listed if p not in read]
        if skipped:
            self.gap("systems", f"skipped {', '.join(skipped)}: not linked to the host's system")
        for doc in [host] + [d for d in (self.get(p, "systems") for p in linked) if d is not None]:
            if doc is not host and isinstance(doc.get("Boot"), dict):
                # Another bootable System is another host (multi-node chassis): not ours to count.
                self.gap("systems", f"skipped {doc.get('@odata.id')}: another bootable system")
                continue
            self.processors(doc)  # the host, and GPU baseboards that are Systems of their own
            if doc is host:
                self.memory(doc)
                self.storage(doc)
                self.nics(doc)
            self.system_pcie(doc)
        self.finish_pcie()
        self.firmware(root, refs_of(obj_of(host, "Links").get("ManagedBy")))
        return self.inv

    def _host(self, listed: list[str]) -> Doc | None:
        """The host's System: bmc.system, else the only one, else the first bootable one."""
        wanted = (self.host_system or "").rstrip("/")
        if wanted and wanted in listed:
            return self.get(wanted, "systems")
        if wanted:
            self.gap("systems", f"bmc.system {self.host_system} is not listed by the BMC")
        first = None
        for path in listed:
            doc = self.get(path, "systems")
            if doc is not None and (len(listed) == 1 or isinstance(doc.get("Boot"), dict)):
                return doc
            first = first or doc
        return first

    def _linked_systems(self, host: Doc, chassis: list[Doc], listed: list[str]) -> list[str]:
        """Systems the host's chassis link (a GPU baseboard that is a System of its own)."""
        hostpath = str(host.get("@odata.id")).rstrip("/")
        out: list[str] = []
        for doc in chassis:
            for path in refs_of(obj_of(doc, "Links").get("ComputerSystems")):
                path = path.rstrip("/")
                if path != hostpath and path in listed and path not in out:
                    out.append(path)
        return out

    def system(self, doc: Doc) -> None:
        boot = obj_of(doc, "Boot")
        summary = obj_of(doc, "MemorySummary")
        gib = summary.get("TotalSystemMemoryGiB")
        self.inv.memory_total_mib = int(gib * 1024) if isinstance(gib, (int, float)) else None
        self.inv.system = SystemInfo(
            manufacturer=str_of(doc.get("Manufacturer")),
            model=str_of(doc.get("Model")),
            serial=str_of(doc.get("SerialNumber")),
            uuid=str_of(doc.get("UUID")),
            bios_version=str_of(doc.get("BiosVersion")),
            power_state=str_of(doc.get("PowerState")),
            boot_target=str_of(boot.get("BootSourceOverrideTarget")),
            boot_enabled=str_of(boot.get("BootSourceOverrideEnabled")),
            boot_mode=str_of(boot.get("BootSourceOverrideMode")),
        )
        if not boot:
            self.gap("boot", f"{doc.get('@odata.id')}: no Boot property")

    def processors(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Processors")
        if path is None:
            if isinstance(sysdoc.get("Boot"), dict):
                self.gap("processors", f"{sysdoc.get('@odata.id')}: no Processors link")
            return
        threads = 0
        for doc in self.members(path, "processors"):
            if state_of(doc) == "Absent":
                continue
            kind = doc.get("ProcessorType")
            if kind == "CPU":
                pid = obj_of(doc, "ProcessorId")
                cpu = Cpu(
                    socket=str_of(doc.get("Socket")) or str(doc.get("Id")),
                    model=str_of(doc.get("Model")),
                    vendor=str_of(pid.get("VendorId")) or str_of(doc.get("Manufacturer")),
                    cores=int_of(doc.get("TotalCores")),
                    threads=int_of(doc.get("TotalThreads")),
                    max_speed_mhz=int_of(doc.get("MaxSpeedMHz")),
                    family=int_of(pid.get("EffectiveFamily")),
                    model_id=int_of(pid.get("EffectiveModel")),
                )
                threads += cpu.threads or 0
                self.inv.cpus.append(cpu)
            elif kind == "GPU":
                self.inv.gpus.append(self._gpu(doc))
        if threads:
            self.inv.logical_cpus = (self.inv.logical_cpus or 0) + threads

    def _gpu(self, doc: Doc) -> Gpu:
        links = obj_of(doc, "Links")
        linked = refs_of(links.get("PCIeDevice"))
        self._gpu_links[str(doc.get("Id"))] = linked[0] if linked else None
        # Processor >= 1.8 carries the link itself (NVIDIA HGX); older BMCs only on the PCIe device.
        pcie = obj_of(obj_of(doc, "SystemInterface"), "PCIe")
        funcs = refs_of(links.get("PCIeFunctions"))
        func = (self.get(funcs[0], "gpus") or {}) if funcs else {}
        label = obj_of(obj_of(doc, "Location"), "PartLocation").get("ServiceLabel")
        return Gpu(
            index=str(doc.get("Id")),
            name=str_of(doc.get("Model")),
            slot=str_of(label),
            serial=str_of(doc.get("SerialNumber")),
            pci_device_id=hexid_of(func.get("DeviceId")),
            memory_mib=int_of(obj_of(doc, "MemorySummary").get("TotalMemorySizeMiB")),
            pcie_gen_current=gen_of(pcie.get("PCIeType")),
            pcie_width_current=int_of(pcie.get("LanesInUse")),
            pcie_gen_max=gen_of(pcie.get("MaxPCIeType")),
            pcie_width_max=int_of(pcie.get("MaxLanes")),
            vbios=str_of(doc.get("FirmwareVersion")),
            board_part_number=str_of(doc.get("PartNumber")),
        )

    def memory(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Memory")
        docs = self.members(path, "memory") if path else []
        if not docs:
            self.gap("memory", f"{sysdoc.get('@odata.id')}: no Memory members (DIMMs not exposed)")
        for doc in docs:
            if doc.get("MemoryType") not in (None, "DRAM"):
                continue  # NVDIMM/Optane listed as Memory are not DIMMs of the host
            if str(doc.get("MemoryDeviceType") or "").upper().startswith(("HBM", "GDDR")):
                continue  # a GPU's on-package memory (HGX BMCs list it as DRAM "DIMM Slot"s)
            loc = obj_of(doc, "MemoryLocation")
            speeds = [s for s in doc.get("AllowedSpeedsMHz") or [] if isinstance(s, int)]
            ecc = doc.get("ErrorCorrection")
            self.inv.dimms.append(
                Dimm(
                    locator=str_of(doc.get("DeviceLocator")) or str(doc.get("Id")),
                    present=state_of(doc) != "Absent",
                    size_mib=int_of(doc.get("CapacityMiB")),
                    type=str_of(doc.get("MemoryDeviceType")),
                    rated_mts=max(speeds) if speeds else None,
                    # Redfish names it MHz, but BMCs report the data rate (4800 for DDR5-4800).
                    configured_mts=int_of(doc.get("OperatingSpeedMhz")),
                    manufacturer=str_of(doc.get("Manufacturer")),
                    part_number=str_of(doc.get("PartNumber")),
                    serial=str_of(doc.get("SerialNumber")),
                    rank=int_of(doc.get("RankCount")),
                    ecc=None if ecc is None else ecc != "NoECC",
                    socket=int_of(loc.get("Socket")),
                    channel=None if loc.get("Channel") is None else str(loc.get("Channel")),
                    health=health_of(doc),
                )
            )

    def storage(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Storage")
        stores = self.members(path, "storage") if path else []
        for doc in stores:
            sid = str(doc.get("Id"))
            for ctrl in doc.get("StorageControllers") or []:
                if not isinstance(ctrl, dict):
                    continue
                # Storage >= 1.x names controllers by Id; older ones by MemberId (sushy needs it).
                name = str_of(ctrl.get("MemberId")) or str_of(ctrl.get("Id")) or "0"
                protocols = [str(p) for p in ctrl.get("SupportedDeviceProtocols") or []]
                self.inv.storage_controllers.append(
                    StorageController(
                        name=f"{sid}/{name}",
                        model=str_of(ctrl.get("Model")),
                        firmware=str_of(ctrl.get("FirmwareVersion")),
                        protocols=protocols,
                    )
                )
            for dpath in refs_of(doc.get("Drives")):
                drive = self.get(dpath, "drives")
                if drive is not None:
                    self.inv.drives.append(self._drive(drive))
            for vol in self.members(ref_of(doc, "Volumes"), "volumes"):
                links = obj_of(vol, "Links")
                self.inv.volumes.append(
                    Volume(
                        name=f"{sid}/{vol.get('Id')}",
                        raid_type=str_of(vol.get("RAIDType")) or str_of(vol.get("VolumeType")),
                        capacity_bytes=int_of(vol.get("CapacityBytes")),
                        drives=[p.rsplit("/", 1)[-1] for p in refs_of(links.get("Drives"))],
                    )
                )
        if stores:
            return
        simple = self.members(ref_of(sysdoc, "SimpleStorage"), "storage")
        for doc in simple:
            for i, dev in enumerate(doc.get("Devices") or []):
                if isinstance(dev, dict) and state_of(dev) != "Absent":
                    self.inv.drives.append(
                        Drive(
                            name=str_of(dev.get("Name")) or f"{doc.get('Id')}/{i}",
                            model=str_of(dev.get("Model")),
                            capacity_bytes=int_of(dev.get("CapacityBytes")),
                            health=health_of(dev),
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
                wwn = str_of(ident.get("DurableName"))
        return Drive(
            name=str(doc.get("Id")),
            protocol=str_of(doc.get("Protocol")),
            media=str_of(doc.get("MediaType")),
            model=str_of(doc.get("Model")),
            serial=str_of(doc.get("SerialNumber")),
            wwn=wwn,
            capacity_bytes=int_of(doc.get("CapacityBytes")),
            firmware=str_of(doc.get("Revision")),
            health=health_of(doc),
        )

    def nics(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "EthernetInterfaces")
        docs = self.members(path, "nics") if path else []
        if not docs:
            self.gap("nics", f"{sysdoc.get('@odata.id')}: no EthernetInterfaces")
        for doc in docs:
            link = doc.get("LinkStatus")
            mac = str_of(doc.get("MACAddress")) or str_of(doc.get("PermanentMACAddress"))
            self.inv.nics.append(
                Nic(
                    name=str_of(doc.get("Name")) or str(doc.get("Id")),
                    mac=mac.lower() if mac else None,
                    speed_mbps=int_of(doc.get("SpeedMbps")),
                    link_up=None if link is None else link == "LinkUp",
                )
            )

    def system_pcie(self, sysdoc: Doc) -> None:
        value = sysdoc.get("PCIeDevices")
        if isinstance(value, list):  # an embedded array of links (iDRAC, public-tower)
            self.pcie_paths += refs_of(value)
        elif ref_of(sysdoc, "PCIeDevices"):
            self.pcie_paths += self.pcie_members(ref_of(sysdoc, "PCIeDevices"))

    def finish_pcie(self) -> None:
        by_path: dict[str, PcieDevice] = {}
        by_serial: dict[str, PcieDevice] = {}
        for path in dict.fromkeys(self.pcie_paths):  # ordered, unique
            doc = self.get(path, "pcie")
            if doc is None:
                continue
            links = obj_of(doc, "Links")
            fpaths = refs_of(links.get("PCIeFunctions"))
            if not fpaths:
                fpaths = refs_of((self.get(ref_of(doc, "PCIeFunctions"), "pcie") or {}).get("Members"))
            func = next((f for f in (self.get(p, "pcie") for p in fpaths[:1]) if f), {})
            iface = obj_of(doc, "PCIeInterface")
            dev = PcieDevice(
                address=str(doc.get("Id")),
                vendor_id=hexid_of(func.get("VendorId")),
                device_id=hexid_of(func.get("DeviceId")),
                name=str_of(doc.get("Model")) or str_of(doc.get("Name")),
                device_class=str_of(func.get("DeviceClass")),
                link_gen=gen_of(iface.get("PCIeType")),
                link_width=int_of(iface.get("LanesInUse")),
                max_link_gen=gen_of(iface.get("MaxPCIeType")),
                max_link_width=int_of(iface.get("MaxLanes")),
            )
            self.inv.pcie.append(dev)
            by_path[path] = dev
            if str_of(doc.get("SerialNumber")):
                by_serial[str(doc["SerialNumber"])] = dev
            slot = ((doc.get("Slot") or {}).get("Location") or {}).get("PartLocation") or {}
            self._slots[path] = str_of(slot.get("ServiceLabel"))
        self._merge_gpus(by_path, by_serial)

    def _merge_gpus(self, by_path: dict[str, PcieDevice], by_serial: dict[str, PcieDevice]) -> None:
        merged = []
        for gpu in self.inv.gpus:
            link = self._gpu_links.get(gpu.index)
            dev = by_path.get(link or "") or by_serial.get(gpu.serial or "")
            if dev is None:
                unknown = [
                    what
                    for what, value in (("PCI ids", gpu.pci_device_id), ("link", gpu.pcie_gen_current))
                    if value is None
                ]
                if unknown:
                    self.gap(
                        f"gpu:{gpu.index}",
                        f"no PCIe device linked or matching its serial: {' and '.join(unknown)} unknown",
                    )
                merged.append(gpu)
                continue
            path = next((p for p, d in by_path.items() if d is dev), "")
            # What the GPU's own Processor says wins; the PCIe device fills what it left out.
            fill = {
                "slot": self._slots.get(path),
                "pci_device_id": dev.device_id,
                "pcie_gen_current": dev.link_gen,
                "pcie_width_current": dev.link_width,
                "pcie_gen_max": dev.max_link_gen,
                "pcie_width_max": dev.max_link_width,
            }
            own = gpu.__dict__
            merged.append(Gpu(**{**own, **{k: v for k, v in fill.items() if own[k] is None}}))
        if not merged:  # BMCs that list GPUs only as PCIe devices (HPE iLO)
            serial_of = {id(d): serial for serial, d in by_serial.items()}
            for path, dev in by_path.items():
                if dev.device_class in GPU_CLASSES and dev.vendor_id == "0x10de":
                    merged.append(
                        Gpu(
                            index=dev.address,
                            name=dev.name,
                            slot=self._slots.get(path),
                            serial=serial_of.get(id(dev)),
                            pci_device_id=dev.device_id,
                            pcie_gen_current=dev.link_gen,
                            pcie_width_current=dev.link_width,
                            pcie_gen_max=dev.max_link_gen,
                            pcie_width_max=dev.max_link_width,
                        )
                    )
            if merged:
                self.gap("gpus", "GPUs found only as PCIe devices: the BMC lists no GPU Processor resources")
        self.inv.gpus = merged


def collect_inventory(fetch: Fetch, host_system: str | None = None) -> HardwareInventory:
    return Walker(fetch, host_system).run()
