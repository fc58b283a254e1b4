"""The chassis-level parts of inspection: power readings and power supplies, temperatures and fans,
firmware, each chassis' own health. They come in two generations: legacy Power/Thermal (embedded
arrays) and PowerSubsystem/ThermalSubsystem (collections). No I/O here: `fetch` is the adapter's GET.
"""

from __future__ import annotations

from burnin.hardware import Enclosure, Firmware, PowerReading, Psu, SystemInfo, Temperature
from provision.bmc.reader import (
    Doc,
    Reader,
    health_of,
    ident_of,
    label_of,
    num_of,
    obj_of,
    ref_of,
    refs_of,
    state_of,
    str_of,
)

# Where a SoftwareInventory entry's part lives (RelatedItem) or what it is called, -> its kind.
_KIND_BY_PATH = (
    ("/Processors/", "gpu"),
    ("/Drives/", "drive"),
    ("PowerSuppl", "psu"),
    ("NetworkAdapters", "nic"),
    ("/Managers/", "bmc"),
    ("/Storage/", "storage_controller"),
)
_KIND_BY_NAME = (  # in this order: "GPU VBIOS" is a GPU's, not the host's BIOS
    ("cpld", "cpld"),
    ("gpu", "gpu"),
    ("vbios", "gpu"),
    ("bmc", "bmc"),
    ("idrac", "bmc"),
    ("ilo", "bmc"),
    ("xcc", "bmc"),
    ("bios", "bios"),
    ("uefi", "bios"),
    ("disk", "drive"),
    ("nvme", "drive"),
    ("psu", "psu"),
    ("power supply", "psu"),
    ("nic", "nic"),
)


def component_of(name: str, related: str) -> str:
    """The kind of part a firmware entry belongs to: its RelatedItem's place first, then its name."""
    for needle, kind in _KIND_BY_PATH:
        if needle in related:
            return kind
    low = name.casefold()
    return next((kind for needle, kind in _KIND_BY_NAME if needle in low), "other")


class ChassisReader(Reader):
    def chassis(self, doc: Doc) -> None:
        self.pcie_paths += self.pcie_members(ref_of(doc, "PCIeDevices"))
        name = str(doc.get("Id"))
        self.inv.enclosures.append(
            Enclosure(
                path=str(doc.get("@odata.id")).rstrip("/"),
                role="chassis",
                name=str_of(doc.get("Name")),
                model=ident_of(doc.get("Model")),
                serial=ident_of(doc.get("SerialNumber")),
            )
        )
        self.status(f"chassis:{name}", doc)
        self.network_adapters(doc)
        power = self.get(ref_of(doc, "Power"), "power")
        if power is not None:
            self._legacy_power(name, power)
        elif ref_of(doc, "PowerSubsystem"):
            self._power_subsystem(name, self.get(ref_of(doc, "PowerSubsystem"), "power") or {})
        thermal = self.get(ref_of(doc, "Thermal"), "thermal")
        if thermal is not None:
            self._legacy_thermal(name, thermal)
        elif ref_of(doc, "ThermalSubsystem"):
            self._thermal_subsystem(name, self.get(ref_of(doc, "ThermalSubsystem"), "thermal") or {})

    def _legacy_power(self, name: str, power: Doc) -> None:
        for ctl in power.get("PowerControl") or []:
            if isinstance(ctl, dict):
                self.inv.power.append(
                    PowerReading(
                        name=f"{name}/{str_of(ctl.get('Name')) or ctl.get('MemberId')}",
                        watts=ctl.get("PowerConsumedWatts"),
                        capacity_w=ctl.get("PowerCapacityWatts"),
                    )
                )
        for i, psu in enumerate(power.get("PowerSupplies") or []):
            if isinstance(psu, dict) and state_of(psu) != "Absent":
                pid = str_of(psu.get("Name")) or str_of(psu.get("MemberId")) or str(i)
                self._psu(name, pid, psu, num_of(psu.get("LineInputVoltage")))
        for i, red in enumerate(power.get("Redundancy") or []):
            if isinstance(red, dict):
                self.status(f"psu_redundancy:{name}/{str_of(red.get('Name')) or i}", red)

    def _power_subsystem(self, name: str, sub: Doc) -> None:
        for psu in self.members(ref_of(sub, "PowerSupplies"), "power"):
            metrics = self.get(ref_of(psu, "Metrics"), "power") or {}
            reading = obj_of(metrics, "InputPowerWatts")
            pid = str_of(psu.get("Name")) or str_of(psu.get("Id")) or "?"
            self.inv.power.append(
                PowerReading(
                    name=f"{name}/{str_of(psu.get('Name')) or psu.get('Id')}",
                    watts=reading.get("Reading"),
                    capacity_w=psu.get("PowerCapacityWatts"),
                )
            )
            self._psu(name, pid, psu, num_of(obj_of(metrics, "InputVoltage").get("Reading")))
        for i, red in enumerate(sub.get("PowerSupplyRedundancy") or []):
            if isinstance(red, dict):
                self.status(f"psu_redundancy:{name}/{i}", red)

    def _psu(self, chassis: str, pid: str, doc: Doc, volts: float | None) -> None:
        path = str_of(doc.get("@odata.id")) or f"{chassis}/psu/{pid}"
        serial = ident_of(doc.get("SerialNumber"))
        if not self.first(path) or (serial and any(p.serial == serial for p in self.inv.psus)):
            return
        location = label_of(doc)
        psu = Psu(
            name=pid if not any(p.name == pid for p in self.inv.psus) else f"{chassis}/{pid}",
            model=ident_of(doc.get("Model")),
            serial=serial,
            firmware=ident_of(doc.get("FirmwareVersion")),
            capacity_w=num_of(doc.get("PowerCapacityWatts")),
            input_voltage_v=volts,
            location=location,
            state=state_of(doc),
            health=health_of(doc),
        )
        self.inv.psus.append(psu)
        self.status(f"psu:{psu.name}", doc, location)

    def _legacy_thermal(self, name: str, thermal: Doc) -> None:
        for t in thermal.get("Temperatures") or []:
            if isinstance(t, dict):
                self.inv.temperatures.append(
                    Temperature(
                        name=f"{name}/{t.get('Name')}",
                        celsius=t.get("ReadingCelsius"),
                        upper_critical_c=t.get("UpperThresholdCritical"),
                    )
                )
        for i, fan in enumerate(thermal.get("Fans") or []):
            if isinstance(fan, dict) and state_of(fan) != "Absent":
                label = str_of(fan.get("Name")) or str_of(fan.get("FanName")) or str(i)
                self.status(f"fan:{name}/{label}", fan, label_of(fan))

    def _thermal_subsystem(self, name: str, sub: Doc) -> None:
        metrics = self.get(ref_of(sub, "ThermalMetrics"), "thermal") or {}
        for t in metrics.get("TemperatureReadingsCelsius") or []:
            if isinstance(t, dict):
                label = str_of(t.get("DeviceName")) or str(t.get("DataSourceUri"))
                self.inv.temperatures.append(Temperature(name=f"{name}/{label}", celsius=t.get("Reading")))
        for fan in self.members(ref_of(sub, "Fans"), "thermal"):
            label = str_of(fan.get("Id")) or str_of(fan.get("Name")) or "?"
            self.status(f"fan:{name}/{label}", fan, label_of(fan))

    def _software(self, doc: Doc, version: str) -> Firmware:
        """One SoftwareInventory entry, and the part its RelatedItem names (location, serial, model)."""
        name = str_of(doc.get("Name")) or str(doc.get("Id"))
        related = refs_of(doc.get("RelatedItem"))
        part = (self.get(related[0], "firmware") or {}) if related else {}
        updateable = doc.get("Updateable")
        return Firmware(
            name=name,
            version=version,
            component=component_of(f"{doc.get('Id')} {name}", related[0] if related else ""),
            location=label_of(part),
            serial=ident_of(part.get("SerialNumber")),
            model=ident_of(part.get("Model")),
            updateable=updateable if isinstance(updateable, bool) else None,
            path=str_of(doc.get("@odata.id")),
            related=related[0].rstrip("/") if related else None,
        )

    def network_adapters(self, doc: Doc) -> None:
        """NIC firmware: a chassis' NetworkAdapters, one entry per adapter (its first controller's
        FirmwarePackageVersion; the controllers of one card share one package)."""
        for nic in self.members(ref_of(doc, "NetworkAdapters"), "firmware"):
            ctrls = [c for c in nic.get("Controllers") or [] if isinstance(c, dict)]
            version = next((str_of(c.get("FirmwarePackageVersion")) for c in ctrls if c), None)
            self.inv.firmware.append(
                Firmware(
                    name=str_of(nic.get("Id")) or str_of(nic.get("Name")) or "?",
                    version=version or "",
                    component="nic",
                    location=label_of(nic) or next((label_of(c) for c in ctrls if label_of(c)), None),
                    serial=ident_of(nic.get("SerialNumber")),
                    model=ident_of(nic.get("Model")),
                    related=str_of(nic.get("@odata.id")),
                )
            )

    def firmware(self, root: Doc, managed_by: list[str]) -> None:
        """Firmware inventory, and the BMC version from the managers the host's System names."""
        update = self.get(ref_of(root, "UpdateService"), "firmware")
        docs = self.members(ref_of(update, "FirmwareInventory"), "firmware") if update else []
        if not docs:
            self.gap("firmware", "no UpdateService/FirmwareInventory")
        for doc in docs:
            version = str_of(doc.get("Version"))
            if version:
                self.inv.firmware.append(self._software(doc, version))
        if not managed_by:
            # Without Links.ManagedBy only a lone manager is surely the host's.
            listed = refs_of((self.get(ref_of(root, "Managers"), "managers") or {}).get("Members"))
            managed_by = listed if len(listed) == 1 else []
            if not managed_by:
                self.gap("managers", f"the System names no manager (Links.ManagedBy); {len(listed)} listed")
        for mgr in (d for d in (self.get(p, "managers") for p in managed_by) if d is not None):
            if str_of(mgr.get("FirmwareVersion")) and self.inv.system.bmc_version is None:
                self.inv.system = SystemInfo(
                    **{**self.inv.system.__dict__, "bmc_version": mgr["FirmwareVersion"]}
                )
