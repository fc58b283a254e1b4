"""NVML adapter: the only module that imports `pynvml` (nvidia-ml-py), and lazily, so the agent runs
where it is missing. Nothing from pynvml leaves this module: callers get ints, floats, strings, dicts.

Rules: NotSupported (in NVIDIA's NVML API reference, the device does not support the feature),
FunctionNotFound (the driver predates the call), NoData and friends mean "not available" (None, with
the reason in `gaps`), never an error; GpuIsLost / ResetRequired raise GpuLost, which the suite turns
into a failure. `lib` is the pynvml module, or in tests a fake that keeps pynvml's real constants
and exception classes.

Standard library only (besides pynvml), Python >= 3.9.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

from burnin.hardware import Gpu

# Field values read at the start and end of a run (cumulative counters): name -> pynvml constant name.
COUNTER_FIELDS = {
    "pcie_replay": "NVML_FI_DEV_PCIE_REPLAY_COUNTER",
    "pcie_replay_rollover": "NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER",
    "pcie_correctable_errors": "NVML_FI_DEV_PCIE_COUNT_CORRECTABLE_ERRORS",
    "pcie_fatal_errors": "NVML_FI_DEV_PCIE_COUNT_FATAL_ERROR",
    "pcie_l0_to_recovery": "NVML_FI_DEV_PCIE_L0_TO_RECOVERY_COUNTER",
    "sw_thermal_slowdown_ns": "NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_THERM_SLOWDOWN",
    "hw_thermal_slowdown_ns": "NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_THERM_SLOWDOWN",
    "hw_power_brake_ns": "NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN",
}
_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
_LOST_CODES = ("NVML_ERROR_GPU_IS_LOST", "NVML_ERROR_RESET_REQUIRED")


class NvmlUnavailable(Exception):
    """No NVML here: pynvml missing, no driver, or nvmlInit failed. The message says which."""


class GpuLost(Exception):
    """A GPU fell off the bus (NVML_ERROR_GPU_IS_LOST) or needs a reset: a hardware failure."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"gpu {index}: {reason}")
        self.index = index
        self.reason = reason


def load_library() -> Any:
    try:
        import pynvml  # the agent's zipapp carries it; the agent must still start without it
    except ImportError as exc:
        raise NvmlUnavailable(f"pynvml (nvidia-ml-py) is not importable: {exc}") from None
    return pynvml


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialised NVML session over `lib`. Open with Nvml.open(); close() when done."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.gaps: Dict[str, str] = {}
        self._handles: List[Any] = []
        self._lost = {getattr(lib, name) for name in _LOST_CODES if hasattr(lib, name)}
        self._quiet = {
            getattr(lib, name)
            for name in (
                "NVML_ERROR_NOT_SUPPORTED",
                "NVML_ERROR_FUNCTION_NOT_FOUND",
                "NVML_ERROR_NO_DATA",
                "NVML_ERROR_NO_PERMISSION",
                "NVML_ERROR_NOT_FOUND",
            )
            if hasattr(lib, name)
        }

    @classmethod
    def open(cls, lib: Any = None) -> "Nvml":
        lib = lib if lib is not None else load_library()
        session = cls(lib)
        try:
            lib.nvmlInit()
        except lib.NVMLError as exc:
            raise NvmlUnavailable(f"nvmlInit failed: {_describe(exc)}") from None
        try:
            count = int(lib.nvmlDeviceGetCount())
            session._handles = [lib.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except lib.NVMLError as exc:
            session.close()
            raise NvmlUnavailable(f"cannot enumerate GPUs: {_describe(exc)}") from None
        return session

    def close(self) -> None:
        """Callers stop every thread that uses this session first (nvmlShutdown under a live call crashes)."""
        try:
            self.lib.nvmlShutdown()
        except self.lib.NVMLError as exc:
            self.gaps["shutdown"] = _describe(exc)

    @property
    def count(self) -> int:
        return len(self._handles)

    def call(self, index: Optional[int], what: str, fn_name: str, *args: Any) -> Any:
        """lib.fn_name(*args); None where not available (why: in gaps); GpuLost if the GPU is gone."""
        key = what if index is None else f"gpu{index}.{what}"
        fn = getattr(self.lib, fn_name, None)
        if fn is None:
            self.gaps[key] = f"{fn_name} is not in this pynvml"
            return None
        try:
            return fn(*args)
        except self.lib.NVMLError as exc:
            if exc.value in self._lost:
                raise GpuLost(-1 if index is None else index, _describe(exc)) from None
            self.gaps[key] = ("not available: " if exc.value in self._quiet else "error: ") + _describe(exc)
            return None

    def dev(self, index: int, what: str, fn_name: str, *args: Any) -> Any:
        return self.call(index, what, fn_name, self._handles[index], *args)

    def system(self) -> Dict[str, Any]:
        cuda = self.call(None, "cuda_driver_version", "nvmlSystemGetCudaDriverVersion")
        return {
            "driver_version": _opt_text(self.call(None, "driver_version", "nvmlSystemGetDriverVersion")),
            "nvml_version": _opt_text(self.call(None, "nvml_version", "nvmlSystemGetNVMLVersion")),
            "cuda_driver_version": None if cuda is None else f"{int(cuda) // 1000}.{int(cuda) % 1000 // 10}",
        }

    def describe(self, i: int) -> Dict[str, Any]:
        """Everything inventory wants to know about GPU i, as plain values (None = not available)."""
        lib = self.lib
        d: Dict[str, Any] = {"index": i}
        for key, fn in (
            ("name", "nvmlDeviceGetName"),
            ("uuid", "nvmlDeviceGetUUID"),
            ("serial", "nvmlDeviceGetSerial"),
            ("board_part_number", "nvmlDeviceGetBoardPartNumber"),
            ("vbios", "nvmlDeviceGetVbiosVersion"),
        ):
            d[key] = _opt_text(self.dev(i, key, fn))
        pci = self.dev(i, "pci", "nvmlDeviceGetPciInfo")
        d["pci_bus_id"] = None if pci is None else _text(pci.busId)
        d["pci_device_id"] = None if pci is None else "0x{:04x}".format((int(pci.pciDeviceId) >> 16) & 0xFFFF)
        mem = self.dev(i, "memory", "nvmlDeviceGetMemoryInfo")
        d["memory_mib"] = None if mem is None else int(mem.total) // (1024 * 1024)
        for key, fn in (
            ("pcie_gen_max", "nvmlDeviceGetMaxPcieLinkGeneration"),
            ("pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth"),
            ("pcie_gen_gpu_max", "nvmlDeviceGetGpuMaxPcieLinkGeneration"),
            ("pcie_gen_current", "nvmlDeviceGetCurrPcieLinkGeneration"),
            ("pcie_width_current", "nvmlDeviceGetCurrPcieLinkWidth"),
        ):
            d[key] = _opt_int(self.dev(i, key, fn))
        ecc = self.dev(i, "ecc_mode", "nvmlDeviceGetEccMode")
        d["ecc_current"] = None if ecc is None else bool(ecc[0])
        d["ecc_pending"] = None if ecc is None else bool(ecc[1])
        for key, fn in (
            ("power_limit_default_w", "nvmlDeviceGetPowerManagementDefaultLimit"),
            ("power_limit_enforced_w", "nvmlDeviceGetEnforcedPowerLimit"),
            ("power_limit_w", "nvmlDeviceGetPowerManagementLimit"),
        ):
            d[key] = _milli(self.dev(i, key, fn))
        limits = self.dev(i, "power_limit_constraints", "nvmlDeviceGetPowerManagementLimitConstraints")
        d["power_limit_min_w"] = None if limits is None else _milli(limits[0])
        d["power_limit_max_w"] = None if limits is None else _milli(limits[1])
        cc = self.dev(i, "compute_capability", "nvmlDeviceGetCudaComputeCapability")
        d["compute_capability"] = None if cc is None else f"{int(cc[0])}.{int(cc[1])}"
        d["slowdown_c"] = _opt_int(
            self.dev(
                i, "slowdown_c", "nvmlDeviceGetTemperatureThreshold", lib.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
            )
        )
        d["shutdown_c"] = _opt_int(
            self.dev(
                i, "shutdown_c", "nvmlDeviceGetTemperatureThreshold", lib.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN
            )
        )
        return d

    def sample(self, i: int) -> Dict[str, Optional[float]]:
        """One telemetry tick of GPU i. Units in the keys; clock_events is the raw reason bitmask."""
        lib = self.lib
        util = self.dev(i, "utilization", "nvmlDeviceGetUtilizationRates")
        events = self.dev(i, "clock_events", "nvmlDeviceGetCurrentClocksEventReasons")
        if events is None:  # drivers before R535 only have the older name
            events = self.dev(i, "clock_events_legacy", "nvmlDeviceGetCurrentClocksThrottleReasons")
        return {
            "temp_c": _opt_float(self.dev(i, "temp_c", "nvmlDeviceGetTemperature", lib.NVML_TEMPERATURE_GPU)),
            "power_w": _milli(self.dev(i, "power_w", "nvmlDeviceGetPowerUsage")),
            "sm_clock_mhz": _opt_float(self.dev(i, "sm_clock", "nvmlDeviceGetClockInfo", lib.NVML_CLOCK_SM)),
            "mem_clock_mhz": _opt_float(
                self.dev(i, "mem_clock", "nvmlDeviceGetClockInfo", lib.NVML_CLOCK_MEM)
            ),
            "util_gpu_pct": None if util is None else float(util.gpu),
            "util_mem_pct": None if util is None else float(util.memory),
            "clock_events": _opt_float(events),
            "pcie_gen": _opt_float(self.dev(i, "pcie_gen_current", "nvmlDeviceGetCurrPcieLinkGeneration")),
            "pcie_width": _opt_float(self.dev(i, "pcie_width_current", "nvmlDeviceGetCurrPcieLinkWidth")),
        }

    def counters(self, i: int) -> Dict[str, Optional[int]]:
        """Cumulative error counters of GPU i (ECC, row remapping, PCIe, slowdown time)."""
        lib = self.lib
        c: Dict[str, Optional[int]] = {}
        for key, err, kind in (
            ("ecc_corrected_volatile", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
            ("ecc_uncorrected_volatile", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
            ("ecc_corrected_aggregate", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_AGGREGATE_ECC"),
            ("ecc_uncorrected_aggregate", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_AGGREGATE_ECC"),
        ):
            c[key] = _opt_int(
                self.dev(i, key, "nvmlDeviceGetTotalEccErrors", getattr(lib, err), getattr(lib, kind))
            )
        rows = self.dev(i, "remapped_rows", "nvmlDeviceGetRemappedRows")
        for n, key in enumerate(("remap_corr_rows", "remap_unc_rows", "remap_pending", "remap_failure")):
            c[key] = None if rows is None else int(rows[n])
        c.update(self._fields(i))
        if c.get("pcie_replay") is None:
            c["pcie_replay"] = _opt_int(self.dev(i, "pcie_replay", "nvmlDeviceGetPcieReplayCounter"))
        return c

    def _fields(self, i: int) -> Dict[str, Optional[int]]:
        wanted = [(k, getattr(self.lib, v)) for k, v in COUNTER_FIELDS.items() if hasattr(self.lib, v)]
        out: Dict[str, Optional[int]] = {k: None for k in COUNTER_FIELDS}
        values = self.dev(i, "field_values", "nvmlDeviceGetFieldValues", [fid for _, fid in wanted])
        if values is None:
            return out
        for n, (key, _) in enumerate(wanted):
            v = values[n]
            if int(v.nvmlReturn) != 0:  # NVML_SUCCESS; per-field NotSupported is common
                self.gaps[f"gpu{i}.{key}"] = f"field not available (nvmlReturn {int(v.nvmlReturn)})"
                continue
            attr = _VALUE_ATTR.get(int(v.valueType))
            out[key] = None if attr is None else int(getattr(v.value, attr))
        return out

    def index_of(self, handle: Any) -> Optional[int]:
        for n, h in enumerate(self._handles):
            if h is handle or h == handle:
                return n
        idx = self.call(None, "event_device", "nvmlDeviceGetIndex", handle)
        return None if idx is None else int(idx)


class XidWatcher(threading.Thread):
    """Waits on an NVML event set for XID critical errors and records them as they arrive."""

    WAIT_MS = 500

    def __init__(self, nvml: Nvml) -> None:
        super().__init__(name="nvml-xid", daemon=True)
        self.nvml = nvml
        self.events: List[Dict[str, Any]] = []
        self.watched: List[int] = []
        self.lost: Dict[int, str] = {}
        self.error: Optional[str] = None
        self._halt = threading.Event()
        self._event_set: Any = None

    def arm(self) -> None:
        """Register every GPU that supports XID events; the ones that do not are listed in nvml.gaps."""
        lib = self.nvml.lib
        self._event_set = self.nvml.call(None, "xid_event_set", "nvmlEventSetCreate")
        if self._event_set is None:
            return
        xid = lib.nvmlEventTypeXidCriticalError
        for i in range(self.nvml.count):
            try:
                supported = self.nvml.dev(i, "xid_events", "nvmlDeviceGetSupportedEventTypes")
                if supported is None or not int(supported) & xid:
                    self.nvml.gaps.setdefault(f"gpu{i}.xid_events", "XID events not supported")
                    continue
                self.nvml.dev(i, "xid_events", "nvmlDeviceRegisterEvents", xid, self._event_set)
                if f"gpu{i}.xid_events" not in self.nvml.gaps:
                    self.watched.append(i)
            except GpuLost as lost:
                self.lost[i] = lost.reason

    def run(self) -> None:
        lib = self.nvml.lib
        while self._event_set is not None and not self._halt.is_set():
            try:
                data = lib.nvmlEventSetWait(self._event_set, self.WAIT_MS)
            except lib.NVMLError as exc:
                if exc.value == lib.NVML_ERROR_TIMEOUT:
                    continue
                if exc.value in self.nvml._lost:
                    self.lost[-1] = _describe(exc)
                self.error = _describe(exc)
                return
            self.events.append(
                {
                    "t": time.time(),
                    "gpu": self.nvml.index_of(data.device),
                    "xid": int(data.eventData),
                    "event_type": int(data.eventType),
                }
            )

    def finish(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=self.WAIT_MS / 1000 * 4)
        if self._event_set is not None and not self.is_alive():
            self.nvml.call(None, "xid_event_set", "nvmlEventSetFree", self._event_set)


def to_gpu(d: Dict[str, Any], driver_version: Optional[str]) -> Gpu:
    return Gpu(
        index=str(d["index"]),
        name=d.get("name"),
        uuid=d.get("uuid"),
        serial=d.get("serial"),
        pci_bus_id=d.get("pci_bus_id"),
        pci_device_id=d.get("pci_device_id"),
        memory_mib=d.get("memory_mib"),
        pcie_gen_max=d.get("pcie_gen_max"),
        pcie_width_max=d.get("pcie_width_max"),
        pcie_gen_current=d.get("pcie_gen_current"),
        pcie_width_current=d.get("pcie_width_current"),
        vbios=d.get("vbios"),
        board_part_number=d.get("board_part_number"),
        power_limit_w=d.get("power_limit_enforced_w"),
        ecc_enabled=d.get("ecc_current"),
        compute_capability=d.get("compute_capability"),
        driver_version=driver_version,
    )


def os_gpus(gaps: Optional[Dict[str, str]] = None, lib: Any = None) -> List[Gpu]:
    """The in-OS GPU inventory (for burnin.hardware.HardwareInventory.gpus). Never raises: without
    NVML it returns [] and says why in gaps["gpus"]; per-field gaps go to gaps["gpuN.field"]."""
    gaps = gaps if gaps is not None else {}
    try:
        session = Nvml.open(lib)
    except NvmlUnavailable as exc:
        gaps["gpus"] = str(exc)
        return []
    gpus: List[Gpu] = []
    try:
        driver = session.system()["driver_version"]
        for i in range(session.count):
            try:
                gpus.append(to_gpu(session.describe(i), driver))
            except GpuLost as lost:
                gaps[f"gpu{i}"] = lost.reason
                gpus.append(Gpu(index=str(i)))
    finally:
        session.close()
        gaps.update(session.gaps)
    return gpus


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _opt_text(v: Any) -> Optional[str]:
    return None if v is None else _text(v)


def _opt_int(v: Any) -> Optional[int]:
    return None if v is None else int(v)


def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


def _milli(v: Any) -> Optional[float]:
    return None if v is None else float(v) / 1000.0
