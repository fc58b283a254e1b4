"""Reading a Redfish tree defensively: document helpers, a GET wrapper that turns one resource's
HTTP error into a gap, and the chassis-level parts of inspection (power, thermal, firmware), which
come in two generations: legacy Power/Thermal and PowerSubsystem/ThermalSubsystem. No I/O here:
`fetch` is the adapter's GET.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from burnin.hardware import Firmware, HardwareInventory, PowerReading, SystemInfo, Temperature
from provision.bmc.types import BmcBadDocument, BmcHttpError

Doc = dict[str, Any]
Fetch = Callable[[str], Doc | None]


def ref_of(doc: Doc | None, key: str) -> str | None:
    value = (doc or {}).get(key)
    if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
        return str(value["@odata.id"])
    return None


def refs_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v["@odata.id"]) for v in value if isinstance(v, dict) and "@odata.id" in v]
    if isinstance(value, dict) and "@odata.id" in value:
        return [str(value["@odata.id"])]
    return []


def obj_of(doc: Doc, key: str) -> Doc:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def int_of(value: Any) -> int | None:
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


def gen_of(value: Any) -> int | None:
    m = re.fullmatch(r"Gen(\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def str_of(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def state_of(doc: Doc) -> str | None:
    status = doc.get("Status")
    return str_of(status.get("State")) if isinstance(status, dict) else None


def health_of(doc: Doc) -> str | None:
    status = doc.get("Status")
    return str_of(status.get("Health")) if isinstance(status, dict) else None


def hexid_of(value: Any) -> str | None:
    n = int_of(value)
    return None if n is None else f"0x{n:04x}"


class Reader:
    """Tolerant GETs for one inspection: an HTTP error on one resource becomes a gap in `inv`."""

    def __init__(
        self, fetch: Fetch, host_system: str | None = None, now: Callable[[], float] = time.time
    ) -> None:
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
        except (BmcHttpError, BmcBadDocument) as exc:
            if isinstance(exc, BmcHttpError) and exc.status is None:
                raise  # no answer at all: the BMC is gone, not one resource
            self.gap(area, str(exc))
            return None

    def gap(self, area: str, why: str) -> None:
        self.inv.gaps[area] = f"{self.inv.gaps[area]}; {why}" if area in self.inv.gaps else why

    def members(self, path: str | None, area: str) -> list[Doc]:
        coll = self.get(path, area)
        out = []
        for member in refs_of((coll or {}).get("Members")):
            doc = self.get(member, area)
            if doc is not None:
                out.append(doc)
        return out

    def pcie_members(self, path: str | None) -> list[str]:
        coll = self.get(path, "pcie")
        return refs_of((coll or {}).get("Members"))


class ChassisReader(Reader):
    def chassis(self, doc: Doc) -> None:
        self.pcie_paths += self.pcie_members(ref_of(doc, "PCIeDevices"))
        name = str(doc.get("Id"))
        power = self.get(ref_of(doc, "Power"), "power")
        if power is not None:
            for ctl in power.get("PowerControl") or []:
                if isinstance(ctl, dict):
                    self.inv.power.append(
                        PowerReading(
                            name=f"{name}/{str_of(ctl.get('Name')) or ctl.get('MemberId')}",
                            watts=ctl.get("PowerConsumedWatts"),
                            capacity_w=ctl.get("PowerCapacityWatts"),
                        )
                    )
        elif ref_of(doc, "PowerSubsystem"):
            sub = self.get(ref_of(doc, "PowerSubsystem"), "power") or {}
            for psu in self.members(ref_of(sub, "PowerSupplies"), "power"):
                metrics = self.get(ref_of(psu, "Metrics"), "power") or {}
                reading = obj_of(metrics, "InputPowerWatts")
                self.inv.power.append(
                    PowerReading(
                        name=f"{name}/{str_of(psu.get('Name')) or psu.get('Id')}",
                        watts=reading.get("Reading"),
                        capacity_w=psu.get("PowerCapacityWatts"),
                    )
                )
        thermal = self.get(ref_of(doc, "Thermal"), "thermal")
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
        elif ref_of(doc, "ThermalSubsystem"):
            sub = self.get(ref_of(doc, "ThermalSubsystem"), "thermal") or {}
            metrics = self.get(ref_of(sub, "ThermalMetrics"), "thermal") or {}
            for t in metrics.get("TemperatureReadingsCelsius") or []:
                if isinstance(t, dict):
                    label = str_of(t.get("DeviceName")) or str(t.get("DataSourceUri"))
                    self.inv.temperatures.append(
                        Temperature(name=f"{name}/{label}", celsius=t.get("Reading"))
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
                self.inv.firmware.append(
                    Firmware(name=str_of(doc.get("Name")) or str(doc.get("Id")), version=version)
                )
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
