"""The System-level parts of inspection: processors (CPUs and GPUs), DIMMs, storage, NICs. Each is
taken once (by @odata.id, then by serial), `Absent` members are skipped (DIMM slots are kept as
empty slots), placeholders become unknown, and every part's Status is recorded. No I/O here.
"""

from __future__ import annotations

from burnin.hardware import Cpu, Dimm, Drive, Gpu, Nic, StorageController, Volume
from provision.bmc.chassis import ChassisReader
from provision.bmc.reader import (
    Doc,
    gen_of,
    health_of,
    hexid_of,
    ident_of,
    int_of,
    label_of,
    obj_of,
    ref_of,
    refs_of,
    state_of,
    str_of,
)

_NVME_IDS = ("EUI", "NGUID")


class PartsReader(ChassisReader):
    def processors(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Processors")
        if path is None:
            if isinstance(sysdoc.get("Boot"), dict):
                self.gap("processors", f"{sysdoc.get('@odata.id')}: no Processors link")
            return
        for doc in self.members(path, "processors"):
            self.processor(doc)

    def processor(self, doc: Doc) -> None:
        """One Processor, from a System's collection or a chassis' Links.Processors: taken once."""
        if state_of(doc) == "Absent" or not self.first(str(doc.get("@odata.id"))):
            return
        kind = doc.get("ProcessorType")
        if kind == "CPU":
            pid = obj_of(doc, "ProcessorId")
            cpu = Cpu(
                socket=str_of(doc.get("Socket")) or str(doc.get("Id")),
                model=ident_of(doc.get("Model")),
                vendor=str_of(pid.get("VendorId")) or ident_of(doc.get("Manufacturer")),
                cores=int_of(doc.get("TotalCores")),
                threads=int_of(doc.get("TotalThreads")),
                max_speed_mhz=int_of(doc.get("MaxSpeedMHz")),
                family=int_of(pid.get("EffectiveFamily")),
                model_id=int_of(pid.get("EffectiveModel")),
            )
            self.inv.cpus.append(cpu)
            if cpu.threads:
                self.inv.logical_cpus = (self.inv.logical_cpus or 0) + cpu.threads
            self.status(f"cpu:{cpu.socket}", doc)
        elif kind == "GPU":
            gpu = self._gpu(doc)
            if gpu.serial and any(g.serial == gpu.serial for g in self.inv.gpus):
                return  # one GPU listed under two Systems (host and baseboard)
            self.inv.gpus.append(gpu)
            self.status(f"gpu:{gpu.index}", doc, gpu.slot)

    def _gpu(self, doc: Doc) -> Gpu:
        links = obj_of(doc, "Links")
        linked = refs_of(links.get("PCIeDevice"))
        index = str(doc.get("Id"))
        if any(g.index == index for g in self.inv.gpus):
            index = str(doc.get("@odata.id")).rstrip("/")  # "GPU0" on two baseboards
        self._gpu_links[index] = linked[0] if linked else None
        self._gpu_paths[str(doc.get("@odata.id")).rstrip("/")] = index
        # Processor >= 1.8 carries the link itself (NVIDIA HGX); older BMCs only on the PCIe device.
        pcie = obj_of(obj_of(doc, "SystemInterface"), "PCIe")
        funcs = refs_of(links.get("PCIeFunctions"))
        func = (self.get(funcs[0], "gpus") or {}) if funcs else {}
        return Gpu(
            index=index,
            name=ident_of(doc.get("Model")),
            slot=label_of(doc),
            serial=ident_of(doc.get("SerialNumber")),
            pci_device_id=hexid_of(func.get("DeviceId")),
            memory_mib=int_of(obj_of(doc, "MemorySummary").get("TotalMemorySizeMiB")),
            pcie_gen_current=gen_of(pcie.get("PCIeType")),
            pcie_width_current=int_of(pcie.get("LanesInUse")),
            pcie_gen_max=gen_of(pcie.get("MaxPCIeType")),
            pcie_width_max=int_of(pcie.get("MaxLanes")),
            vbios=str_of(doc.get("FirmwareVersion")),
            board_part_number=ident_of(doc.get("PartNumber")),
        )

    def memory(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Memory")
        docs = self.members(path, "memory", absent=True) if path else []
        if not docs:
            self.gap("memory", f"{sysdoc.get('@odata.id')}: no Memory members (DIMMs not exposed)")
        for doc in docs:
            if doc.get("MemoryType") not in (None, "DRAM"):
                continue  # NVDIMM/Optane listed as Memory are not DIMMs of the host
            if str(doc.get("MemoryDeviceType") or "").upper().startswith(("HBM", "GDDR")):
                self.gpu_memory(doc)  # a GPU's on-package memory (HGX BMCs list it as DRAM "DIMM Slot"s)
                continue
            serial = ident_of(doc.get("SerialNumber"))
            if not self.first(str(doc.get("@odata.id"))) or (
                serial and any(d.serial == serial for d in self.inv.dimms)
            ):
                continue
            loc = obj_of(doc, "MemoryLocation")
            speeds = [s for s in doc.get("AllowedSpeedsMHz") or [] if isinstance(s, int)]
            ecc = doc.get("ErrorCorrection")
            locator = str_of(doc.get("DeviceLocator")) or str(doc.get("Id"))
            if any(d.locator == locator for d in self.inv.dimms):
                locator = str(doc.get("Id"))
            dimm = Dimm(
                locator=locator,
                present=state_of(doc) != "Absent",
                size_mib=int_of(doc.get("CapacityMiB")),
                type=str_of(doc.get("MemoryDeviceType")),
                rated_mts=max(speeds) if speeds else None,
                # Redfish names it MHz, but BMCs report the data rate (4800 for DDR5-4800).
                configured_mts=int_of(doc.get("OperatingSpeedMhz")),
                manufacturer=ident_of(doc.get("Manufacturer")),
                part_number=ident_of(doc.get("PartNumber")),
                serial=serial,
                rank=int_of(doc.get("RankCount")),
                ecc=None if ecc is None else ecc != "NoECC",
                socket=int_of(loc.get("Socket")),
                channel=None if loc.get("Channel") is None else str(loc.get("Channel")),
                health=health_of(doc),
            )
            self.inv.dimms.append(dimm)
            if dimm.present:
                self.status(f"dimm:{dimm.locator}", doc)

    def gpu_memory(self, doc: Doc) -> None:
        """A GPU's memory listed as a Memory resource linked to its Processor (a baseboard System's
        Memory, or the host's): counted toward that GPU where its Processor gives no MemorySummary."""
        mib = int_of(doc.get("CapacityMiB"))
        procs = refs_of(obj_of(doc, "Links").get("Processors"))
        if mib and procs and self.first(str(doc.get("@odata.id"))):
            key = procs[0].rstrip("/")
            self._gpu_mem[key] = self._gpu_mem.get(key, 0) + mib

    def board_memory(self, sysdoc: Doc) -> None:
        for doc in self.members(ref_of(sysdoc, "Memory"), "memory"):
            self.gpu_memory(doc)

    def storage(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "Storage")
        stores = self.members(path, "storage") if path else []
        for doc in stores:
            sid = str(doc.get("Id"))
            self.status(f"storage:{sid}", doc)
            nvme = False
            for ctrl in doc.get("StorageControllers") or []:
                if not isinstance(ctrl, dict) or state_of(ctrl) == "Absent":
                    continue
                # Storage >= 1.x names controllers by Id; older ones by MemberId (sushy needs it).
                name = str_of(ctrl.get("MemberId")) or str_of(ctrl.get("Id")) or "0"
                protocols = [str(p) for p in ctrl.get("SupportedDeviceProtocols") or []]
                nvme = nvme or "NVMe" in protocols
                self.inv.storage_controllers.append(
                    StorageController(
                        name=f"{sid}/{name}",
                        model=ident_of(ctrl.get("Model")),
                        firmware=str_of(ctrl.get("FirmwareVersion")),
                        protocols=protocols,
                    )
                )
                self.status(f"controller:{sid}/{name}", ctrl, label_of(ctrl))
            for dpath in dict.fromkeys(refs_of(doc.get("Drives"))):
                drive = self.get(dpath, "drives")
                if drive is not None and state_of(drive) != "Absent" and self.first(dpath):
                    self._drive(sid, dpath, drive, nvme)
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
                    name = str_of(dev.get("Name")) or f"{doc.get('Id')}/{i}"
                    if any(d.name == name for d in self.inv.drives):
                        name = f"{doc.get('Id')}/{i}"
                    self.inv.drives.append(
                        Drive(
                            name=name,
                            model=ident_of(dev.get("Model")),
                            capacity_bytes=int_of(dev.get("CapacityBytes")),
                            health=health_of(dev),
                        )
                    )
                    self.status(f"drive:{name}", dev)
        if simple:
            self.gap("storage", "only SimpleStorage is exposed: no drive protocol, serial or WWN")
        else:
            self.gap("storage", f"{sysdoc.get('@odata.id')}: neither Storage nor SimpleStorage is exposed")

    def _drive(self, sid: str, path: str, doc: Doc, nvme_subsystem: bool) -> None:
        serial = ident_of(doc.get("SerialNumber"))
        if serial and any(d.serial == serial for d in self.inv.drives):
            return  # one drive linked from two Storage resources
        wwn, formats = None, set()
        for ident in doc.get("Identifiers") or []:
            if isinstance(ident, dict):
                formats.add(ident.get("DurableNameFormat"))
                if ident.get("DurableNameFormat") in ("NAA", "EUI", "NGUID"):
                    wwn = ident_of(ident.get("DurableName"))
        protocol = str_of(doc.get("Protocol"))
        if protocol == "PCIe" and (nvme_subsystem or formats & set(_NVME_IDS)):
            protocol = "NVMe"  # iDRAC names an NVMe drive by its transport
        # Drive Ids repeat across controllers (Disk.0 on two RAID cards) or are missing altogether.
        name = str_of(doc.get("Id")) or path.rstrip("/").rsplit("/", 1)[-1]
        if any(d.name == name for d in self.inv.drives):
            name = f"{sid}/{name}"
        location = label_of(doc)
        self.inv.drives.append(
            Drive(
                name=name,
                protocol=protocol,
                media=str_of(doc.get("MediaType")),
                model=ident_of(doc.get("Model")),
                serial=serial,
                wwn=wwn,
                capacity_bytes=int_of(doc.get("CapacityBytes")),
                firmware=str_of(doc.get("Revision")),
                health=health_of(doc),
            )
        )
        self.status(f"drive:{name}", doc, location)

    def nics(self, sysdoc: Doc) -> None:
        path = ref_of(sysdoc, "EthernetInterfaces")
        docs = self.members(path, "nics") if path else []
        if not docs:
            self.gap("nics", f"{sysdoc.get('@odata.id')}: no EthernetInterfaces")
        for doc in docs:
            link = doc.get("LinkStatus")
            mac = ident_of(doc.get("MACAddress")) or ident_of(doc.get("PermanentMACAddress"))
            if mac and any(n.mac == mac.lower() for n in self.inv.nics):
                continue
            name = str_of(doc.get("Name")) or str(doc.get("Id"))
            if any(n.name == name for n in self.inv.nics):
                name = str(doc.get("Id"))
            self.inv.nics.append(
                Nic(
                    name=name,
                    mac=mac.lower() if mac else None,
                    speed_mbps=int_of(doc.get("SpeedMbps")),
                    link_up=None if link is None else link == "LinkUp",
                )
            )
            self.status(f"nic:{name}", doc)
