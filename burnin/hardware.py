"""One normalized hardware inventory, whoever saw it: the BMC before the OS (Redfish) or the agent
inside the OS (lscpu, dmidecode, nvme-cli, sysfs, NVML). Pre-OS and in-OS views of a host are two
instances of this model, so validation can cross-check them part by part.

Standard library only, Python >= 3.9 (the agent builds it on the host; the controller imports it).
Units are in the names. A field the source could not see is None, never a guess; `gaps` says why.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

# How the same drive identifier is written by its sources: udev by-id names ("wwn-0x5002..."),
# lsblk and sysfs ("0x5002...", "eui.0025...", "nvme.144d-..."), hosts.yaml ("0x5002..." or
# "naa.5002..."), Redfish DurableName ("5002...", no prefix) and some BMCs with colons.
_WWN_PREFIX = re.compile(r"^(wwn-)?(0x|naa\.|eui\.|nguid\.|nvme\.)?")


def normalize_wwn(text: Optional[str]) -> Optional[str]:
    """A WWN/EUI-64/NGUID in one comparable form (lower case, no prefix, no colons); None when empty.

    Two identifiers name the same drive exactly when their normalized forms are equal."""
    if not text:
        return None
    value = _WWN_PREFIX.sub("", text.strip().lower(), count=1).replace(":", "")
    return value or None


# What BMCs and DMI write where they know nothing: never an identity, never compared.
_PLACEHOLDERS = {
    "n/a", "na", "none", "null", "unknown", "not available", "not specified", "not applicable",
    "not installed", "default string", "to be filled by o.e.m.", "no asset tag", "-",
}  # fmt: skip
_FILLER = re.compile(r"^(0x)?([0:.\-]+|[f:.\-]+|[x]+)$", re.IGNORECASE)


def known(text: Optional[str]) -> Optional[str]:
    """`text` stripped, or None where it is a placeholder ("N/A", "not available", a serial of
    zeros, a MAC of zeros or ones): an unknown value, which must never match another."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    if not value or value.casefold() in _PLACEHOLDERS or _FILLER.match(value):
        return None
    return value


@dataclass(frozen=True)
class SystemInfo:
    manufacturer: Optional[str] = None
    model: Optional[str] = None
    serial: Optional[str] = None
    uuid: Optional[str] = None
    bios_version: Optional[str] = None
    bmc_version: Optional[str] = None
    power_state: Optional[str] = None  # "On", "Off", ...
    boot_target: Optional[str] = None  # Redfish BootSourceOverrideTarget
    boot_enabled: Optional[str] = None  # Once/Continuous/Disabled
    boot_mode: Optional[str] = None  # UEFI/Legacy
    os_name: Optional[str] = None
    kernel: Optional[str] = None


@dataclass(frozen=True)
class Cpu:
    socket: str  # "CPU1", "P0", "0"
    model: Optional[str] = None
    vendor: Optional[str] = None
    cores: Optional[int] = None
    threads: Optional[int] = None
    max_speed_mhz: Optional[int] = None
    family: Optional[int] = None
    model_id: Optional[int] = None


@dataclass(frozen=True)
class Dimm:
    locator: str  # "P0 CHANNEL A" / "DIMM_A1" / Redfish Id
    present: bool = True
    size_mib: Optional[int] = None
    type: Optional[str] = None  # "DDR5"
    rated_mts: Optional[int] = None
    configured_mts: Optional[int] = None
    manufacturer: Optional[str] = None
    part_number: Optional[str] = None
    serial: Optional[str] = None
    rank: Optional[int] = None
    ecc: Optional[bool] = None
    socket: Optional[int] = None
    channel: Optional[str] = None
    health: Optional[str] = None


@dataclass(frozen=True)
class Gpu:
    index: str  # NVML index, or Redfish Processor Id
    name: Optional[str] = None
    slot: Optional[str] = None  # physical slot label where the source knows it ("SLOT3")
    uuid: Optional[str] = None
    serial: Optional[str] = None
    pci_bus_id: Optional[str] = None
    pci_device_id: Optional[str] = None  # "0x2bb4"
    memory_mib: Optional[int] = None
    pcie_gen_max: Optional[int] = None
    pcie_width_max: Optional[int] = None
    pcie_gen_current: Optional[int] = None
    pcie_width_current: Optional[int] = None
    vbios: Optional[str] = None
    board_part_number: Optional[str] = None
    power_limit_w: Optional[float] = None
    ecc_enabled: Optional[bool] = None
    compute_capability: Optional[str] = None
    driver_version: Optional[str] = None


@dataclass(frozen=True)
class Drive:
    name: str  # "nvme0n1", "sda", Redfish Drive Id
    protocol: Optional[str] = None  # "NVMe", "SATA", "SAS"
    media: Optional[str] = None  # "SSD", "HDD"
    model: Optional[str] = None
    serial: Optional[str] = None
    wwn: Optional[str] = None
    capacity_bytes: Optional[int] = None
    firmware: Optional[str] = None
    pcie_gen: Optional[int] = None
    pcie_width: Optional[int] = None
    health: Optional[str] = None


@dataclass(frozen=True)
class StorageController:
    name: str  # Redfish Storage Id / controller MemberId, or the OS's driver name
    model: Optional[str] = None
    firmware: Optional[str] = None
    protocols: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Volume:
    name: str  # Redfish Volume Id, or "md0"
    raid_type: Optional[str] = None  # "RAID1"
    capacity_bytes: Optional[int] = None
    drives: List[str] = field(default_factory=list)  # Drive names


@dataclass(frozen=True)
class Nic:
    name: str  # "eth0" or Redfish EthernetInterface Id
    mac: Optional[str] = None
    speed_mbps: Optional[int] = None
    link_up: Optional[bool] = None
    driver: Optional[str] = None
    pcie_gen: Optional[int] = None
    pcie_width: Optional[int] = None


@dataclass(frozen=True)
class PcieDevice:
    address: str  # "0000:41:00.0" or Redfish Id
    vendor_id: Optional[str] = None
    device_id: Optional[str] = None
    name: Optional[str] = None
    device_class: Optional[str] = None
    link_gen: Optional[int] = None
    link_width: Optional[int] = None
    max_link_gen: Optional[int] = None
    max_link_width: Optional[int] = None


@dataclass(frozen=True)
class Firmware:
    """One entry of the BMC's FirmwareInventory (SoftwareInventory), with the part it belongs to
    where the BMC links one (RelatedItem): its kind, location and serial."""

    name: str
    version: str
    component: Optional[str] = None  # "bios", "bmc", "cpld", "gpu", "drive", "nic", "psu", ...
    location: Optional[str] = None
    serial: Optional[str] = None
    model: Optional[str] = None
    updateable: Optional[bool] = None
    path: Optional[str] = None  # the SoftwareInventory @odata.id (an update's target)
    related: Optional[str] = None  # the part's @odata.id (RelatedItem)


@dataclass(frozen=True)
class PowerReading:
    name: str
    watts: Optional[float] = None
    capacity_w: Optional[float] = None


@dataclass(frozen=True)
class Temperature:
    name: str
    celsius: Optional[float] = None
    upper_critical_c: Optional[float] = None


@dataclass(frozen=True)
class Psu:
    name: str  # "PSU3", Redfish PowerSupply Id or legacy MemberId
    model: Optional[str] = None
    serial: Optional[str] = None
    firmware: Optional[str] = None
    capacity_w: Optional[float] = None
    input_voltage_v: Optional[float] = None
    location: Optional[str] = None  # ServiceLabel, where the BMC gives one
    state: Optional[str] = None  # Redfish Status.State ("Enabled", "StandbySpare", ...)
    health: Optional[str] = None  # "OK", "Warning", "Critical"


@dataclass(frozen=True)
class Enclosure:
    """A System or Chassis the source read, and what it is to the host."""

    path: str  # Redfish @odata.id
    role: str  # "host" (the bootable System), "baseboard" (a GPU board's System), "chassis"
    name: Optional[str] = None
    model: Optional[str] = None
    serial: Optional[str] = None


@dataclass(frozen=True)
class PartStatus:
    """One part's health as its source states it (Redfish Status), for every kind of part."""

    part: str  # "psu:PSU3", "drive:Disk.Bay.1", "chassis:1": the kind, then the part's name
    location: Optional[str] = None  # slot or service label, where known
    state: Optional[str] = None  # Status.State
    health: Optional[str] = None  # Status.Health
    rollup: Optional[str] = None  # Status.HealthRollup (the part and what it contains)
    message: Optional[str] = None  # the source's own words (Conditions[].Message, Oem text)


@dataclass
class HardwareInventory:
    source: str  # "redfish" or "os"
    collected_at: float
    system: SystemInfo = field(default_factory=SystemInfo)
    cpus: List[Cpu] = field(default_factory=list)
    logical_cpus: Optional[int] = None
    numa_nodes: Optional[int] = None
    iommu_groups: Optional[int] = None  # entries of /sys/kernel/iommu_groups (0: IOMMU off)
    memory_total_mib: Optional[int] = None
    dimms: List[Dimm] = field(default_factory=list)
    gpus: List[Gpu] = field(default_factory=list)
    drives: List[Drive] = field(default_factory=list)
    storage_controllers: List[StorageController] = field(default_factory=list)
    volumes: List[Volume] = field(default_factory=list)
    nics: List[Nic] = field(default_factory=list)
    pcie: List[PcieDevice] = field(default_factory=list)
    firmware: List[Firmware] = field(default_factory=list)
    power: List[PowerReading] = field(default_factory=list)
    temperatures: List[Temperature] = field(default_factory=list)
    psus: List[Psu] = field(default_factory=list)
    enclosures: List[Enclosure] = field(default_factory=list)
    health: List[PartStatus] = field(default_factory=list)
    gaps: Dict[str, str] = field(default_factory=dict)  # what could not be read, and why

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


_PARTS = {
    "cpus": Cpu,
    "dimms": Dimm,
    "gpus": Gpu,
    "drives": Drive,
    "storage_controllers": StorageController,
    "volumes": Volume,
    "nics": Nic,
    "pcie": PcieDevice,
    "firmware": Firmware,
    "power": PowerReading,
    "temperatures": Temperature,
    "psus": Psu,
    "enclosures": Enclosure,
    "health": PartStatus,
}


def inventory_from_dict(d: Dict[str, Any]) -> HardwareInventory:
    kwargs: Dict[str, Any] = {k: v for k, v in d.items() if k not in _PARTS and k != "system"}
    inv = HardwareInventory(**kwargs)
    inv.system = SystemInfo(**d.get("system", {}))
    for key, cls in _PARTS.items():
        setattr(inv, key, [cls(**item) for item in d.get(key, [])])
    return inv
