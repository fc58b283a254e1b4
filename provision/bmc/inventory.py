"""Normalize a Redfish service's tree into `burnin.hardware.HardwareInventory(source="redfish")`.

No I/O here: the walker is handed `fetch(path) -> dict | None` (the adapter's GET; None for 404).
Every resource is read defensively, because vendors differ in where things live and what they
fill: Storage controllers by `Id` or `MemberId`, PCIe devices under the System (link or array) or
the Chassis (or both: iDRAC), PCIe functions as a collection or under `Links`, legacy Power/Thermal
or PowerSubsystem/ThermalSubsystem, GPUs on a baseboard that is a System or Chassis of its own
(HGX), reached through the chassis tree (`Contains`/`ContainedBy`), `Links.ComputerSystems` or
`Links.Processors`. What the BMC does not expose is recorded in `gaps` (area -> why), never guessed.

On a BMC that fronts many Systems (a multi-node chassis, an emulator holding a rack) only what is
the host's is read: another System the host's own chassis links is read (to tell a GPU baseboard
from another node) only when the host's manager serves it (`ManagerForServers` of the managers the
host's System names), or when those managers do not say whom they serve. A chassis the host's
chassis contains is the host's hardware: its Systems are read whoever manages them (an HGX
baseboard has a controller of its own). So the reads per host do not grow with the nodes.
"""

from __future__ import annotations

from burnin.hardware import Enclosure, Gpu, HardwareInventory, PcieDevice, SystemInfo
from provision.bmc.parts import PartsReader
from provision.bmc.reader import (
    Doc,
    Fetch,
    gen_of,
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

ROOT = "/redfish/v1"
GPU_CLASSES = {"DisplayController", "ProcessingAccelerators"}


def _path(doc: Doc) -> str:
    return str(doc.get("@odata.id")).rstrip("/")


def _bootable(doc: Doc) -> bool:
    """A host System boots; a GPU baseboard's System (HGX) has no Boot property."""
    return isinstance(doc.get("Boot"), dict)


class Walker(PartsReader):
    """One inspection: follows links from the service root and fills the inventory."""

    def __init__(self, fetch: Fetch, host_system: str | None = None) -> None:
        super().__init__(fetch, host_system)
        self._managers: dict[str, Doc | None] = {}
        self._served_by: tuple[set[str] | None] | None = None  # None until the managers are read
        self._passed: set[str] = set()  # Systems skipped as other nodes' (said once)

    def get(self, path: str | None, area: str) -> Doc | None:
        """A manager is read once per inspection, by the sibling rule and the firmware alike."""
        if area != "managers" or not path:
            return super().get(path, area)
        key = path.rstrip("/")
        if key not in self._managers:
            self._managers[key] = super().get(path, area)
        return self._managers[key]

    def _served(self, host: Doc) -> set[str] | None:
        """The Systems the host's managers say they serve; None when they do not say (read then)."""
        if self._served_by is None:
            served: set[str] | None = None
            for path in refs_of(obj_of(host, "Links").get("ManagedBy")):
                links = obj_of(self.get(path, "managers") or {}, "Links")
                if "ManagerForServers" in links:
                    served = (served or set()) | {p.rstrip("/") for p in refs_of(links["ManagerForServers"])}
            self._served_by = (served,)
        return self._served_by[0]

    def _not_ours(self, host: Doc, paths: list[str]) -> list[str]:
        """Of `paths`, the Systems the host's managers do not serve: other nodes, not even read."""
        served = self._served(host)
        return [] if served is None else [p for p in paths if p not in served]

    def _skipped(self, paths: list[str], why: str) -> None:
        paths = [p for p in paths if p not in self._passed]
        if not paths:
            return
        self._passed.update(paths)
        shown = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        self.gap("systems", f"skipped {shown}: {why}")

    def run(self) -> HardwareInventory:
        root = self.get(f"{ROOT}/", "service") or {}
        coll = self.get(ref_of(root, "Systems") or f"{ROOT}/Systems", "systems")
        listed = list(dict.fromkeys(p.rstrip("/") for p in refs_of((coll or {}).get("Members"))))
        if not listed:
            self.gap("systems", "the BMC lists no systems")
            return self.inv
        host = self._host(listed)
        if host is None:
            return self.inv
        self.system(host)
        # The chassis the host's System names (a BMC fronting several nodes lists them all);
        # every chassis only where the System names none.
        own = [p.rstrip("/") for p in refs_of(obj_of(host, "Links").get("Chassis"))]
        if not own:
            own = [p.rstrip("/") for p in self._listed(ref_of(root, "Chassis") or f"{ROOT}/Chassis")]
        boards: list[Doc] = []
        chassis = self._chassis_tree(own, host, listed, boards)
        self._sibling_boards(host, listed, boards)
        for doc in [host, *boards]:
            self.processors(doc)  # the host, and GPU baseboards that are Systems of their own
            if doc is host:
                self.memory(doc)
                self.storage(doc)
                self.nics(doc)
            else:
                self.board_memory(doc)
            self.system_pcie(doc)
        for doc in chassis:  # processors a chassis links itself (an HGX baseboard's GPUs)
            for path in refs_of(obj_of(doc, "Links").get("Processors")):
                if path.rstrip("/") in self._read:
                    continue  # read already from its System's collection
                proc = self.get(path, "processors")
                if proc is not None:
                    self.processor(proc)
        self.finish_pcie()
        self._fill_gpu_memory()
        self.firmware(root, refs_of(obj_of(host, "Links").get("ManagedBy")))
        return self.inv

    def _fill_gpu_memory(self) -> None:
        for path, mib in self._gpu_mem.items():
            index = self._gpu_paths.get(path)
            for i, gpu in enumerate(self.inv.gpus):
                if gpu.index == index and gpu.memory_mib is None:
                    self.inv.gpus[i] = Gpu(**{**gpu.__dict__, "memory_mib": mib})

    def _listed(self, path: str) -> list[str]:
        return refs_of((self.get(path, "chassis") or {}).get("Members"))

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
            if doc is not None and (len(listed) == 1 or _bootable(doc)):
                return doc
            first = first or doc
        return first

    def _chassis_tree(self, own: list[str], host: Doc, listed: list[str], boards: list[Doc]) -> list[Doc]:
        """The host's chassis, every chassis they contain (down `Links.Contains`, and the chassis a
        baseboard System names), and the enclosures they sit in (up `ContainedBy`, without going
        down into the enclosure's other nodes). Baseboard Systems linked on the way join `boards`."""
        out: list[Doc] = []
        seen: set[str] = set()
        queue = [(p, True) for p in own]
        top = set(own)
        while queue:
            path, down = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            doc = self.get(path, "chassis")
            if doc is None or state_of(doc) == "Absent":
                continue
            out.append(doc)
            self.chassis(doc)
            links = obj_of(doc, "Links")
            for parent in refs_of(links.get("ContainedBy")):
                queue.append((parent.rstrip("/"), False))
            if not down:
                continue
            queue += [(p.rstrip("/"), True) for p in refs_of(links.get("Contains"))]
            for board in self._linked_boards(links, host, listed, boards, judge=path in top):
                queue += [(p.rstrip("/"), True) for p in refs_of(obj_of(board, "Links").get("Chassis"))]
        return out

    def _linked_boards(
        self, links: Doc, host: Doc, listed: list[str], boards: list[Doc], judge: bool
    ) -> list[Doc]:
        """Systems a chassis links: baseboards join `boards`, other bootable Systems are other hosts.
        judge: the host's own chassis, which may link every node of an enclosure (sushy-emulator's
        links them all): there a System the host's managers do not serve is not even read. A chassis
        the host's contains is the host's hardware: its Systems are read whoever manages them (an
        HGX baseboard is managed by the baseboard's own controller, not the host's BMC)."""
        new = []
        taken = {_path(host)} | {_path(b) for b in boards}
        linked = [p.rstrip("/") for p in refs_of(links.get("ComputerSystems"))]
        linked = [p for p in dict.fromkeys(linked) if p not in taken]
        others = self._not_ours(host, linked) if judge else []
        if others:
            self._skipped(others, "another manager's system")
        for path in linked:
            if path in others:
                continue
            doc = self.get(path, "systems")
            if doc is None:
                continue
            taken.add(path)
            if _bootable(doc):
                # Another bootable System is another host (multi-node chassis): not ours to count.
                self.gap("systems", f"skipped {path}: another bootable system")
                continue
            self._board(doc, boards)
            new.append(doc)
        return new

    def _board(self, doc: Doc, boards: list[Doc]) -> None:
        boards.append(doc)
        self.inv.enclosures.append(
            Enclosure(
                path=_path(doc),
                role="baseboard",
                name=str_of(doc.get("Name")),
                model=ident_of(doc.get("Model")),
                serial=ident_of(doc.get("SerialNumber")),
            )
        )
        self.status(f"system:{doc.get('Id')}", doc)

    def _sibling_boards(self, host: Doc, listed: list[str], boards: list[Doc]) -> None:
        """A System no chassis of the host links: where it is the only other one the BMC lists and
        it does not boot, it is the host's GPU baseboard (HGX); else not ours, and said so. Several
        others are other nodes of a multi-node chassis, not even read."""
        taken = {_path(host)} | {_path(b) for b in boards}
        # One other System is read to tell a baseboard from a node, whoever manages it (an HGX
        # baseboard has a manager of its own); several are not read at all.
        rest = [p for p in listed if p not in taken and p not in self._passed]
        doc = self.get(rest[0], "systems") if len(rest) == 1 else None
        if doc is not None and not _bootable(doc):
            self._board(doc, boards)
        elif rest:
            self.gap("systems", f"skipped {', '.join(rest)}: not linked to the host's system")

    def system(self, doc: Doc) -> None:
        boot = obj_of(doc, "Boot")
        summary = obj_of(doc, "MemorySummary")
        gib = summary.get("TotalSystemMemoryGiB")
        self.inv.memory_total_mib = int(gib * 1024) if isinstance(gib, (int, float)) else None
        self.inv.system = SystemInfo(
            manufacturer=ident_of(doc.get("Manufacturer")),
            model=ident_of(doc.get("Model")),
            serial=ident_of(doc.get("SerialNumber")),
            uuid=ident_of(doc.get("UUID")),
            bios_version=str_of(doc.get("BiosVersion")),
            power_state=str_of(doc.get("PowerState")),
            boot_target=str_of(boot.get("BootSourceOverrideTarget")),
            boot_enabled=str_of(boot.get("BootSourceOverrideEnabled")),
            boot_mode=str_of(boot.get("BootSourceOverrideMode")),
        )
        self.inv.enclosures.append(
            Enclosure(
                path=_path(doc),
                role="host",
                name=str_of(doc.get("Name")),
                model=self.inv.system.model,
                serial=self.inv.system.serial,
            )
        )
        self.status(f"system:{doc.get('Id')}", doc)
        if not boot:
            self.gap("boot", f"{doc.get('@odata.id')}: no Boot property")

    def system_pcie(self, sysdoc: Doc) -> None:
        value = sysdoc.get("PCIeDevices")
        if isinstance(value, list):  # an embedded array of links (iDRAC, public-tower)
            self.pcie_paths += refs_of(value)
        elif ref_of(sysdoc, "PCIeDevices"):
            self.pcie_paths += self.pcie_members(ref_of(sysdoc, "PCIeDevices"))

    def finish_pcie(self) -> None:
        by_path: dict[str, PcieDevice] = {}
        by_serial: dict[str, PcieDevice] = {}
        seen: dict[tuple[str, ...], PcieDevice] = {}
        for path in dict.fromkeys(self.pcie_paths):  # ordered, unique
            doc = self.get(path, "pcie")
            if doc is None or state_of(doc) == "Absent":
                continue
            links = obj_of(doc, "Links")
            fpaths = refs_of(links.get("PCIeFunctions"))
            if not fpaths:
                fpaths = refs_of((self.get(ref_of(doc, "PCIeFunctions"), "pcie") or {}).get("Members"))
            func = next((f for f in (self.get(p, "pcie") for p in fpaths[:1]) if f), {})
            iface = obj_of(doc, "PCIeInterface")
            serial = ident_of(doc.get("SerialNumber"))
            dev = PcieDevice(
                address=str(doc.get("Id")),
                vendor_id=hexid_of(func.get("VendorId")),
                device_id=hexid_of(func.get("DeviceId")),
                name=ident_of(doc.get("Model")) or str_of(doc.get("Name")),
                device_class=str_of(func.get("DeviceClass")),
                link_gen=gen_of(iface.get("PCIeType")),
                link_width=int_of(iface.get("LanesInUse")),
                max_link_gen=gen_of(iface.get("MaxPCIeType")),
                max_link_width=int_of(iface.get("MaxLanes")),
            )
            # iDRAC lists each device under the Chassis and the System, at two paths: one device.
            key = (
                ("serial", serial)
                if serial
                else ("id", dev.address, dev.vendor_id or "", dev.device_id or "")
            )
            if key in seen:
                by_path[path] = seen[key]
                continue
            seen[key] = dev
            self.inv.pcie.append(dev)
            by_path[path] = dev
            if serial:
                by_serial[serial] = dev
            self._slots[path] = label_of(obj_of(doc, "Slot"))
            self.status(f"pcie:{dev.address}", doc, self._slots[path])
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
                "name": dev.name,
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
                if any(g.index == dev.address for g in merged):
                    continue  # the same device at a second path
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
