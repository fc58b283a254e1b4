"""A profile's optional `bios:` block: the BIOS settings a node class must run with. Pure.

Two ways to say a setting, merged into one set of vendor attributes (`desired_attributes`):
- the common ones by meaning (`smt: true`, `nps: 4`, `iommu: true`, ...), translated through the
  per-vendor map below into the attribute name and value that vendor's BIOS uses;
- any attribute by the vendor's own name under `attributes:` (sent as written; it wins over a
  common one that maps to the same name).

The map is a starting point, not an authority: BIOS releases rename attributes. Where the BMC
offers an AttributeRegistry, every name and value is checked against it before anything is sent
(provision.acceptance.bios), so a wrong entry here is refused with the registry's words, never
written blind. A vendor the map does not know leaves the common settings untranslated
(an inconclusive finding that asks for the vendor's name under `attributes:`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

BiosValue = str | int | bool
EVIDENCE_ID = "redfish.bios"  # the Evidence every BIOS finding rests on: the Bios resource read


@dataclass(frozen=True)
class RegistryEntry:
    """One attribute as the BMC's AttributeRegistry describes it."""

    name: str
    type: str | None  # Enumeration, String, Integer, Boolean, Password
    values: tuple[str, ...] = ()  # ValueName of each allowed value (Enumeration)
    read_only: bool = False
    immutable: bool = False
    lower: int | None = None
    upper: int | None = None


class Vendor(StrEnum):
    dell = "dell"
    hpe = "hpe"
    lenovo = "lenovo"
    supermicro = "supermicro"
    ami = "ami"  # AMI Aptio / AMD CBS names (ASRock Rack, Gigabyte and other AMI-based boards)


class Common(StrEnum):
    """The common settings, as the `bios:` block names them."""

    smt = "smt"
    nps = "nps"
    determinism = "determinism"
    iommu = "iommu"
    above_4g_decoding = "above_4g_decoding"
    resizable_bar = "resizable_bar"
    power_profile = "power_profile"


Nps = Literal[0, 1, 2, 4]
Determinism = Literal["performance", "power"]
PowerProfile = Literal["performance", "balanced", "efficiency"]


class BiosSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    smt: bool | None = None  # simultaneous multithreading (2 threads per core when on)
    nps: Nps | None = None  # NUMA nodes per socket (0: one node across all sockets)
    determinism: Determinism | None = None  # AMD determinism slider
    iommu: bool | None = None
    above_4g_decoding: bool | None = None  # MMIO above 4 GiB (large GPU BARs)
    resizable_bar: bool | None = None
    power_profile: PowerProfile | None = None
    # The manufacturer's map to use; detected from the System's Manufacturer when not given.
    vendor: Vendor | None = None
    attributes: dict[str, BiosValue] = {}  # vendor attribute name -> value, sent as written

    def common(self) -> dict[Common, BiosValue]:
        """The common settings the profile gives (None: not given)."""
        out: dict[Common, BiosValue] = {}
        for c in Common:
            value = getattr(self, c.value)
            if value is not None:
                out[c] = value
        return out


# (attribute name, {profile value: vendor value}) per vendor and common setting.
Mapping = tuple[str, dict[BiosValue, BiosValue]]
ON_OFF: dict[BiosValue, BiosValue] = {True: "Enabled", False: "Disabled"}
_NPS_DIGITS: dict[BiosValue, BiosValue] = {n: str(n) for n in (0, 1, 2, 4)}
_NPS_NAMED: dict[BiosValue, BiosValue] = {n: f"NPS{n}" for n in (0, 1, 2, 4)}

# Sources, checked 2026-12 (names not found in any source are marked unverified: the BMC's
# AttributeRegistry is what decides, and refuses a wrong one before anything is sent):
# - dell: github.com/weka/tools bios_tool/defaults-db.yml (a PowerEdge R6615, EPYC 9004, factory
#   attributes: LogicalProc, NumaNodesPerSocket "1", DeterminismSlider PowerDeterminism, IommuSupport,
#   SysProfile PerfOptimized) and bios_tool/Dell-Genoa-bios.yml (PerfDeterminism); MmioAbove4Gb from
#   a public racadm fixture of a C6320; ResizableBar unverified.
# - hpe: github.com/weka/tools bios_tool/bios_settings.yml (Hpe/AMD: ProcSMT, ProcAmdIoVt,
#   NumaMemoryDomainsPerSocket TwoMemoryDomainsPerSocket, PerformanceDeterminism
#   PerformanceDeterministic, PowerRegulator StaticHighPerf); Pci64BitAddressing and
#   ResizableBarSupport unverified.
# - lenovo: https://lenovopress.lenovo.com/lp1977-tuning-uefi-settings-4th-gen-amd-epyc-processor-servers
#   (ThinkSystem V3 AMD: Processors_SMTMode, Processors_DeterminismSlider, Memory_NUMANodesperSocket
#   (lower-case "per"), OperatingModes_ChooseOperatingMode MaximumPerformance / MaximumEfficiency:
#   the Efficiency-Favor* modes are Intel-only), with public SR635 V3 dumps (DevicesandIOPorts_IOMMU);
#   the MMIO-above-4GB and Resizable BAR names unverified.
# - supermicro: github.com/weka/tools bios_tool/bios_settings.yml (Supermicro/AMD: SMTControl, IOMMU,
#   NUMANodesPerSocket) and public H13 check scripts (NUMANodesPerSocket NPS4, Above4GDecoding,
#   DeterminismEnable Power under DeterminismControl Manual, PowerProfileSelection "High Performance
#   Mode", Re_SizeBARSupport); the other power profile values unverified, so not mapped.
# - ami: AMD CBS names as AMI Aptio exposes them: unverified against a public dump.
VENDOR_MAP: dict[Vendor, dict[Common, Mapping]] = {
    Vendor.dell: {
        Common.smt: ("LogicalProc", ON_OFF),
        Common.nps: ("NumaNodesPerSocket", _NPS_DIGITS),
        Common.determinism: (
            "DeterminismSlider",
            {"performance": "PerfDeterminism", "power": "PowerDeterminism"},
        ),
        Common.iommu: ("IommuSupport", ON_OFF),
        Common.above_4g_decoding: ("MmioAbove4Gb", ON_OFF),
        Common.resizable_bar: ("ResizableBar", ON_OFF),
        Common.power_profile: (
            "SysProfile",
            {
                "performance": "PerfOptimized",
                "balanced": "PerfPerWattOptimizedDapc",
                "efficiency": "PerfPerWattOptimizedOs",
            },
        ),
    },
    Vendor.hpe: {
        Common.smt: ("ProcSMT", ON_OFF),
        Common.nps: (
            "NumaMemoryDomainsPerSocket",
            {
                1: "OneMemoryDomainPerSocket",
                2: "TwoMemoryDomainsPerSocket",
                4: "FourMemoryDomainsPerSocket",
            },
        ),
        Common.determinism: (
            "PerformanceDeterminism",
            {"performance": "PerformanceDeterministic", "power": "PowerDeterministic"},
        ),
        Common.iommu: ("ProcAmdIoVt", ON_OFF),
        Common.above_4g_decoding: ("Pci64BitAddressing", ON_OFF),
        Common.resizable_bar: ("ResizableBarSupport", ON_OFF),
        Common.power_profile: (
            "PowerRegulator",
            {
                "performance": "StaticHighPerf",
                "balanced": "DynamicPowerSavings",
                "efficiency": "StaticLowPower",
            },
        ),
    },
    Vendor.lenovo: {
        Common.smt: ("Processors_SMTMode", ON_OFF),
        Common.nps: ("Memory_NUMANodesperSocket", _NPS_NAMED),
        Common.determinism: (
            "Processors_DeterminismSlider",
            {"performance": "Performance", "power": "Power"},
        ),
        Common.iommu: ("DevicesandIOPorts_IOMMU", ON_OFF),
        Common.above_4g_decoding: ("DevicesandIOPorts_MMIOAbove4GB", ON_OFF),
        Common.resizable_bar: ("DevicesandIOPorts_ResizableBAR", ON_OFF),
        Common.power_profile: (
            "OperatingModes_ChooseOperatingMode",
            {"performance": "MaximumPerformance", "efficiency": "MaximumEfficiency"},
        ),
    },
    Vendor.supermicro: {
        Common.smt: ("SMTControl", ON_OFF),
        Common.nps: ("NUMANodesPerSocket", _NPS_NAMED),
        # Takes effect with DeterminismControl: Manual (name it under bios.attributes).
        Common.determinism: ("DeterminismEnable", {"performance": "Performance", "power": "Power"}),
        Common.iommu: ("IOMMU", ON_OFF),
        Common.above_4g_decoding: ("Above4GDecoding", ON_OFF),
        Common.resizable_bar: ("Re_SizeBARSupport", ON_OFF),
        Common.power_profile: ("PowerProfileSelection", {"performance": "High Performance Mode"}),
    },
    Vendor.ami: {
        Common.smt: ("CbsCmnCpuSmtCtrl", {True: "Enable", False: "Disable"}),
        Common.nps: ("CbsDfCmnDramNps", _NPS_NAMED),
        Common.determinism: ("CbsCmnDeterminismCtl", {"performance": "Performance", "power": "Power"}),
        Common.iommu: ("CbsCmnGnbNbIOMMU", ON_OFF),
        Common.above_4g_decoding: ("Above4GDecoding", ON_OFF),
        Common.resizable_bar: ("PciRsBarSupport", ON_OFF),
        Common.power_profile: (
            "CbsCmnPowerProfile",
            {"performance": "HighPerformance", "balanced": "Balanced", "efficiency": "PowerEfficiency"},
        ),
    },
}

# System.Manufacturer (casefolded) substrings -> the map to use.
MANUFACTURERS: tuple[tuple[str, Vendor], ...] = (
    ("dell", Vendor.dell),
    ("hewlett packard", Vendor.hpe),
    ("hpe", Vendor.hpe),
    ("lenovo", Vendor.lenovo),
    ("supermicro", Vendor.supermicro),
    ("super micro", Vendor.supermicro),
    ("asrock", Vendor.ami),
    ("gigabyte", Vendor.ami),
    ("american megatrends", Vendor.ami),
    ("ami", Vendor.ami),
)


def vendor_of(manufacturer: str | None, override: Vendor | None = None) -> Vendor | None:
    if override is not None:
        return override
    text = (manufacturer or "").casefold()
    return next((v for marker, v in MANUFACTURERS if marker in text), None)


class Desired(BaseModel):
    """The vendor attributes a profile asks for, with where each came from, and the common settings
    that have no attribute on this vendor (each with why)."""

    model_config = ConfigDict(frozen=True)

    attributes: dict[str, BiosValue]
    origin: dict[str, str]  # attribute -> "smt" (the common setting) or "attributes"
    unmapped: dict[str, str]  # common setting -> why it has no attribute here


def desired_attributes(settings: BiosSettings, vendor: Vendor | None) -> Desired:
    attributes: dict[str, BiosValue] = {}
    origin: dict[str, str] = {}
    unmapped: dict[str, str] = {}
    table = VENDOR_MAP.get(vendor) if vendor is not None else None
    for common, value in settings.common().items():
        if table is None:
            unmapped[common.value] = (
                "the BMC's manufacturer has no attribute map here: set bios.vendor "
                f"({', '.join(v.value for v in Vendor)}) or name the attribute under bios.attributes"
            )
            continue
        name, values = table[common]
        if value not in values:
            unmapped[common.value] = f"{vendor} has no value for {common.value}={value!r}"
            continue
        attributes[name] = values[value]
        origin[name] = common.value
    for name, value in settings.attributes.items():
        attributes[name] = value
        origin[name] = "attributes"
    return Desired(attributes=attributes, origin=origin, unmapped=unmapped)


def same_value(desired: BiosValue, current: object) -> bool:
    """Equal as the BIOS means it: BMCs render booleans and numbers as strings ("true", "4")."""
    if current is None:
        return False
    if isinstance(desired, bool) or isinstance(current, bool):
        return str(desired).casefold() == str(current).casefold()
    if isinstance(desired, int) or isinstance(current, int):
        return str(desired).strip() == str(current).strip()
    return desired == current


__all__ = [
    "EVIDENCE_ID",
    "VENDOR_MAP",
    "BiosSettings",
    "BiosValue",
    "Common",
    "Desired",
    "RegistryEntry",
    "Vendor",
    "desired_attributes",
    "same_value",
    "vendor_of",
]
