"""Hardware profiles: what a node class is (from the seed) and what its parts really report.

Pure: typed, frozen models only. Loading lives in `provision.model.catalog`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from provision.model.bios import BiosSettings
from provision.model.firmware import FirmwareBaseline
from provision.model.gpu_floors import GpuFloors
from provision.model.grammar import (
    GpuName,
    KernelArg,
    OsName,
    OsVersion,
    ProfileName,
    TunedProfile,
    Word,
    ZfsName,
)
from provision.model.handoff import Handoff

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Pct = Annotated[float, Field(ge=0, le=100)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chassis(Frozen):
    vendor: str
    model: str
    height_u: PosInt
    gpu_slots: NonNegInt = 0


class Cpu(Frozen):
    model: str  # exactly as lscpu and Redfish show it
    vendor: str = "AuthenticAMD"
    sockets: PosInt
    cores_per_socket: PosInt
    threads_per_core: PosInt
    base_mhz: PosInt
    boost_mhz: PosInt
    tdp_w: PosInt
    cpuid_family: PosInt
    cpuid_model: NonNegInt | None = None
    l3_mib_per_socket: PosInt
    memory_channels_per_socket: PosInt
    dimm_slots_per_socket: PosInt

    @property
    def logical_cpus(self) -> int:
        return self.sockets * self.cores_per_socket * self.threads_per_core


class Memory(Frozen):
    dimm_count: PosInt
    dimm_size_gib: PosInt
    type: str  # "DDR5"
    form: str  # "RDIMM"
    ecc: bool
    rated_mts: PosInt  # what the DIMM label says (dmidecode "Speed")
    configured_mts_allowed: tuple[PosInt, ...]  # what the CPU trains them to ("Configured Memory Speed")
    configured_mts_expected: PosInt
    populated_channels_per_socket: PosInt
    triad_fail_below_pct: Pct = 72.0  # of theoretical peak, until a golden host is captured
    triad_warn_below_pct: Pct = 80.0
    part_number: str | None = None
    ranks: PosInt | None = None

    @property
    def total_gib(self) -> int:
        return self.dimm_count * self.dimm_size_gib


class GpuDriverMode(StrEnum):
    keep = "keep"  # GPU Operator runs with driver.enabled=false and uses ours
    remove = "remove"  # removed before handoff; the operator installs its own


class Gpus(Frozen):
    count: PosInt
    name: GpuName  # exact NVML name
    seed_name: str  # what the seed document calls it
    pci_vendor_id: str = "0x10de"
    pci_device_id: str
    memory_mib: PosInt  # as NVML reports memory.total
    memory_tolerance_pct: Pct = 0.5
    seed_memory_gb: PosInt
    pcie_gen: PosInt
    pcie_width: PosInt
    power_limit_w: PosInt
    compute_capability: str
    ecc_required: bool = True
    dcgm_diag_level: Annotated[int, Field(ge=1, le=4)] = 1
    mem_bandwidth_gbs: PosInt
    fp32_tflops: float | None = Field(default=None, gt=0)  # datasheet FP32 (non-tensor) peak, for the floor
    driver_mode: GpuDriverMode = GpuDriverMode.keep
    resource_name: str = "nvidia.com/gpu"


class DriveRole(StrEnum):
    boot = "boot"
    scratch = "scratch"


class DriveInterface(StrEnum):
    sata = "sata"
    nvme = "nvme"


class DriveClass(Frozen):
    role: DriveRole
    count: PosInt
    interface: DriveInterface
    seed_capacity: str  # "3.84 TB", as the seed writes it
    capacity_bytes: PosInt  # exact, as the drive reports it
    raid: str | None = None  # "raid1" for the boot mirror
    pcie_gen: PosInt | None = None
    pcie_width: PosInt | None = None
    link_gbps: float | None = None  # SATA link rate
    destructive_allowed: bool = False


class NicRole(StrEnum):
    management = "management"
    data = "data"
    rdma = "rdma"


class Nic(Frozen):
    name: str
    role: NicRole
    speed_gbps: PosInt
    required: bool = True
    peer: str | None = None
    protocol: str | None = None


class Power(Frozen):
    expected_draw_w: PosInt  # the seed's figure
    pdu: str
    receptacle: str  # "NEMA 6-30R", "NEMA 6-20R", "IEC C20"
    circuit_amps: PosInt
    voltage_v: PosInt
    continuous_pct: Pct = 80.0  # NEC: continuous load at most 80% of the breaker rating
    other_draw_w: NonNegInt = 0  # fans, DIMMs, drives, NICs: added to CPU and GPU TDPs for a full burn

    class Psus(Frozen):
        """The power supplies the node is built with; `redundancy` says how many may fail."""

        count: PosInt
        capacity_w: PosInt  # each
        redundancy: Literal["N", "N+1", "N+N"] = "N+1"

        @property
        def carrying(self) -> int:
            """How many PSUs must carry the full load with the redundancy held back."""
            spare = {"N": 0, "N+1": 1, "N+N": self.count // 2}[self.redundancy]
            return self.count - spare

        @model_validator(mode="after")
        def _spares_fit(self) -> Power.Psus:
            if self.redundancy == "N+N" and self.count % 2:
                raise ValueError(f"redundancy N+N needs an even count of PSUs, got {self.count}")
            if self.redundancy == "N+1" and self.count < 2:
                raise ValueError(f"redundancy N+1 needs at least 2 PSUs, got {self.count}")
            return self

    psus: Psus | None = None  # optional: judged at inspection where given

    @property
    def continuous_w(self) -> float:
        return self.circuit_amps * self.voltage_v * self.continuous_pct / 100


class TaintEffect(StrEnum):
    NoSchedule = "NoSchedule"
    PreferNoSchedule = "PreferNoSchedule"
    NoExecute = "NoExecute"


class Taint(Frozen):
    key: str
    value: str
    effect: TaintEffect


class ZfsPool(Frozen):
    name: ZfsName  # both reach `zpool create` in a root shell at handoff
    layout: Word  # "stripe", "mirror", "raidz1"
    storage_class: str = "openebs-zfspv"


class OsSpec(Frozen):
    # Each reaches the kickstart (a comment, %post, the bootloader line) and the iPXE kernel line.
    name: OsName
    version: OsVersion
    tuned_profile: TunedProfile
    kernel_args: tuple[KernelArg, ...] = ()


class Platform(Frozen):
    rack: str
    circle: PosInt
    pool: str
    labels: dict[str, str]
    taints: tuple[Taint, ...] = ()
    namespace: str
    reserved_cpu_pct: Pct
    reserved_memory_mib: PosInt
    os: OsSpec
    zfs: ZfsPool | None = None
    use_cases: tuple[str, ...] = ()


class Suite(StrEnum):
    cpu = "cpu"
    memory = "memory"
    nvme = "nvme"
    boot_disks = "boot_disks"
    gpu = "gpu"
    soak = "soak"


class SuiteSpec(Frozen):
    suite: Suite
    duration_s: PosInt
    required: bool = True
    options: dict[str, str | int | float | bool] = {}


class BurninPlan(Frozen):
    sample_interval_s: float = Field(default=1.0, gt=0)
    suites: tuple[SuiteSpec, ...]


class Coverage(Frozen):
    """How much of the machine the acceptance run must have exercised, beyond time. Each floor is
    judged from the suites' own measurements (provision/acceptance/validation/contract.py)."""

    memory_tested_pct: Pct | None = None  # RAM one verified pattern pass covered, of MemTotal
    gpu_memory_tested_pct: Pct | None = None  # each GPU's memory written and checked, of its total
    # bytes written / read on each scratch drive, as % of its capacity (100 = every byte once)
    scratch_written_pct: Annotated[float, Field(ge=0)] | None = None
    scratch_read_pct: Annotated[float, Field(ge=0)] | None = None
    soak_together_min: Annotated[float, Field(ge=0)] | None = None  # minutes, CPUs + GPUs loaded


class AcceptancePlan(BurninPlan):
    """The acceptance plan is also the contract: its suites, each for at least its `duration_s` with
    at least its evidence options (destructive writes, gpu_burn, a DCGM level), and its coverage.
    A run of any plan is accepted only when it gave all of that."""

    coverage: Coverage = Coverage()


class Plans(Frozen):
    quick: BurninPlan
    acceptance: AcceptancePlan


class PeakOf(StrEnum):
    """Theoretical peaks the validator derives from the profile itself."""

    memory_bandwidth = "memory_bandwidth"  # configured MT/s x 8 B x populated channels, GB/s
    gpu_memory_bandwidth = "gpu_memory_bandwidth"  # gpus.mem_bandwidth_gbs, per GPU


class Floor(Frozen):
    """A performance floor on one suite measurement. `measurement` is a dotted path into the suite's
    measurements; `*` fans out over parts (a list or a mapping), one finding per part."""

    check: str
    suite: Suite
    measurement: str  # "triad_gbs", "gpus.*.matmul_tflops"
    unit: str = ""
    peak: float | None = Field(default=None, gt=0)  # theoretical peak, in the measurement's unit
    peak_of: PeakOf | None = None
    fail_below_pct: Pct | None = None  # of the peak; memory floors default to memory.triad_*_pct
    warn_below_pct: Pct | None = None
    golden_fail_below_pct: Pct = 90.0  # of the golden host's figure, once captured
    golden_warn_below_pct: Pct = 95.0
    spread_pct: Pct | None = None  # sibling parts within this % of their median
    required: bool = True


class Counter(Frozen):
    """An error counter that must stay at or below `max` (zero unless said otherwise)."""

    check: str
    suite: Suite
    measurement: str  # dotted path, `*` fans out over parts
    max: NonNegInt = 0
    required: bool = True


WAIVER_FORM = "a list of {check: <check id>, component: <optional component or prefix>, reason: <why>}"


class Waiver(Frozen):
    """One `acceptance.not_required` entry: a check this node class cannot give evidence for, and why.
    `component` narrows it to one component, or to those starting with it (`gpu` for gpu0, gpu1...)."""

    check: Annotated[str, Field(min_length=1)]
    component: Annotated[str, Field(min_length=1)] | None = None
    reason: Annotated[str, Field(min_length=1)]

    @field_validator("check")
    @classmethod
    def _not_the_contract(cls, v: str) -> str:
        if v.startswith("contract_"):
            raise ValueError(
                f"{v!r} is the acceptance contract, which no waiver lifts: "
                "ask for less evidence in the profile's burnin.acceptance plan instead"
            )
        return v

    def covers(self, check: str, component: str) -> bool:
        return check == self.check and (self.component is None or component.startswith(self.component))


class Acceptance(Frozen):
    """Thresholds that are policy rather than hardware facts."""

    cpu_temp_max_c: float = 90.0
    gpu_temp_margin_c: float = 5.0  # below NVML's slowdown threshold
    gpu_throughput_spread_pct: Pct = 7.0  # of the node median
    gpu_compute_floor_pct: Pct = 50.0  # of gpus.fp32_tflops, for the built-in FMA kernel (est.)
    gpu_mem_floor_pct: Pct = 60.0  # of gpus.mem_bandwidth_gbs, for the built-in write+check kernels (est.)
    nvme_spread_pct: Pct = 10.0
    edac_ce_max: NonNegInt = 0
    edac_ue_max: NonNegInt = 0
    # Minimum firmware versions by name: "bios", "bmc", "gpu_vbios", "nvme", "sata", or a
    # Firmware.name from the inventory. Compared numerically part by part ("1.10" > "1.9").
    firmware_min: dict[str, str] = {}
    floors: tuple[Floor, ...] = ()
    counters: tuple[Counter, ...] = ()
    # Telemetry series (fnmatch patterns) the temperature and power checks read.
    # The agent names CPU temperatures temp.k10temp.<label> (Tctl, Tccd1...), or
    # temp.k10temp-<socket>.<label> when there are several sockets, and RAPL power
    # power.package-<n>.<zone>_w; GPUs are gpu<i>.temp_c / gpu<i>.power_w.
    cpu_temp_series: tuple[str, ...] = ("cpu*.temp_c", "temp.k10temp.*", "temp.k10temp-*")
    gpu_temp_series: str = "gpu*.temp_c"
    node_power_series: str = "node.power_w"  # the BMC's whole-chassis reading, when sampled
    part_power_series: tuple[str, ...] = ("cpu*.power_w", "gpu*.power_w", "power.package-*_w")
    gpu_slowdown_measurement: str = "gpus.*.slowdown_c"  # in the gpu suite's measurements (NVML)
    # Checks (Finding.check names) this node class cannot give evidence for, each with the reason
    # (a VM has no temperature sensors or power meters). Their findings are still made and shown;
    # inconclusive ones no longer hold the run back. A failure still fails.
    not_required: tuple[Waiver, ...] = ()
    # A run without the BMC's (pre-OS) inventory cannot cross-check it against the OS's view: its
    # `pre_os_crosscheck` finding is inconclusive, and blocks acceptance only where this is true.
    pre_os_required: bool = False
    # Clear the BMC's event log (LogService.ClearLog) when the mark is taken before the burn-in.
    clear_event_log: bool = False

    @field_validator("not_required", mode="before")
    @classmethod
    def _waiver_form(cls, v: object) -> object:
        if isinstance(v, dict) or (isinstance(v, (list, tuple)) and any(isinstance(e, str) for e in v)):
            raise ValueError(f"expected {WAIVER_FORM}, got the old plain check-name form")
        return tuple(v) if isinstance(v, list) else v  # the strict loader hands JSON lists on as lists

    def waiver(self, check: str, component: str) -> Waiver | None:
        """The entry that waives this check on this component, if any."""
        return next((w for w in self.not_required if w.covers(check, component)), None)


class Timeouts(Frozen):
    """How long `provision host` waits at each wait before it stops and says what it waited for.

    `--timeout NAME=SECONDS` overrides one for a run. The burn-in's wait is the plan's own duration
    plus `burnin_margin_s` (tool start-up, telemetry flush, a slow first compile of the triad).
    """

    power_s: PosInt = 300  # a power state change to be seen by the BMC
    install_start_s: PosInt = 1800  # power cycle -> the installer's `started` callback (POST, PXE, initrd)
    install_s: PosInt = 7200  # `started` -> `finished` (package install, driver build)
    ssh_s: PosInt = 1200  # `finished` -> SSH answers with the pinned host key (reboot, first boot)
    burnin_margin_s: PosInt = 1800
    collect_s: PosInt = 600
    poll_s: Annotated[float, Field(gt=0, le=60)] = 5.0  # how often a wait asks again


class Profile(Frozen):
    name: ProfileName
    description: str
    # A lab node class (a VM): only here may `acceptance.not_required` waive evidence classes
    # (suite completion, stress results, ECC, XIDs). `provision lint` refuses them elsewhere.
    lab: bool = False
    chassis: Chassis
    cpu: Cpu
    memory: Memory
    gpus: Gpus | None = None
    storage: tuple[DriveClass, ...]
    network: tuple[Nic, ...]
    power: Power
    platform: Platform
    acceptance: Acceptance = Acceptance()
    burnin: Plans
    timeouts: Timeouts = Timeouts()
    bios: BiosSettings | None = None  # BIOS settings this node class runs with (provision.model.bios)
    firmware: FirmwareBaseline | None = None  # firmware baseline + uniformity (provision.model.firmware)
    gpu_floors: GpuFloors | None = None  # GPU copy / peer / collective floors (provision.model.gpu_floors)
    handoff: Handoff = Handoff()  # how the accepted host joins its cluster (provision.model.handoff)

    def drives(self, role: DriveRole) -> DriveClass | None:
        return next((d for d in self.storage if d.role is role), None)

    @property
    def gpu_count(self) -> int:
        return self.gpus.count if self.gpus else 0

    @property
    def memory_peak_gbs(self) -> float:
        """Theoretical peak DRAM bandwidth at the expected configured speed: MT/s x 8 B per channel."""
        m = self.memory
        return m.configured_mts_expected * 8 * m.populated_channels_per_socket * self.cpu.sockets / 1000

    @property
    def cpu_burn_w(self) -> int:
        return self.cpu.sockets * self.cpu.tdp_w

    @property
    def gpu_burn_w(self) -> int:
        return self.gpus.count * self.gpus.power_limit_w if self.gpus else 0

    @property
    def full_burn_w(self) -> int:
        """CPUs and GPUs at their limits at once, plus the rest of the box (fans, DIMMs, drives)."""
        return self.cpu_burn_w + self.gpu_burn_w + self.power.other_draw_w

    @property
    def soak_cpu_load_pct(self) -> int:
        """The CPU load the soak may add to full GPU load within the feed's continuous rating: 100 when
        the whole burn fits, else the share of the CPUs' TDP that still fits (0: the GPUs and the rest
        of the box alone exceed the feed; `provision lint` refuses that profile)."""
        if self.full_burn_w <= self.power.continuous_w or not self.cpu_burn_w:
            return 100
        room = self.power.continuous_w - self.gpu_burn_w - self.power.other_draw_w
        return max(0, min(100, int(100 * room / self.cpu_burn_w)))
