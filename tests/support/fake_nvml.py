"""A fake NVML for hosts without a GPU, injected at burnin.nvml's `lib` seam.

It keeps the REAL pynvml constants and exception classes (pynvml imports without a driver): every
attribute the fake does not define is looked up on the real module, and errors are raised as
`pynvml.NVMLError(code)`, which pynvml maps to its own subclasses. Functions named in `missing` raise
NVMLError_FunctionNotFound, as an older driver does. Also a fake CUDA stressor with injected results.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pynvml

from burnin.gpu_load import ComputeResult, Device, GpuLoadResult, MemoryResult
from burnin.gpu_power import PowerResult

MAXQ = "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"


@dataclass
class FakeGpu:
    index: int
    name: str = MAXQ
    memory_mib: int = 97887
    device_id: int = 0x2BB4
    pcie_max: tuple[int, int] = (5, 16)
    pcie_idle: tuple[int, int] = (1, 16)  # GPUs train the link down when idle
    pcie_load: tuple[int, int] = (5, 16)
    ecc_mode: tuple[int, int] = (1, 1)
    power_limit_mw: int = 300_000
    cc: tuple[int, int] = (12, 0)
    slowdown_c: int = 90
    shutdown_c: int = 95
    temp_idle_c: int = 35
    temp_load_c: int = 70
    power_idle_mw: int = 25_000
    power_load_mw: int = 290_000
    clock_events_load: int = 0x4  # SwPowerCap: normal under a full burn
    ecc: dict[tuple[int, int], int] = field(default_factory=dict)  # (error type, counter type) -> count
    ecc_after_load: dict[tuple[int, int], int] = field(default_factory=dict)
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)
    fields: dict[int, int] = field(default_factory=dict)
    fields_after_load: dict[int, int] = field(default_factory=dict)
    lose_after_samples: int | None = None  # GpuIsLost from then on
    xid_after_samples: list[tuple[int, int]] = field(default_factory=list)  # (samples taken, xid)
    xid_supported: bool = True
    loaded: bool = False
    was_loaded: bool = False
    samples: int = 0

    @property
    def bus_id(self) -> str:
        return f"00000000:{0x41 + 0x20 * self.index:02X}:00.0"

    @property
    def serial(self) -> str:
        return f"165232401{self.index:04d}"


class _Handle:
    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu


class FakeNvml:
    def __init__(
        self, gpus: list[FakeGpu], missing: tuple[str, ...] = (), init_error: int | None = None
    ) -> None:
        self.gpus = gpus
        self.missing = set(missing)
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        self.shutdown_called = False
        self._lock = threading.Lock()

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("nvml") and name in object.__getattribute__(self, "missing"):

            def not_found(*_: Any) -> Any:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

            return not_found
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        value = getattr(pynvml, name)  # constants and exception classes: the real ones
        if callable(value) and name.startswith("nvml"):
            raise AttributeError(f"the fake does not model {name}")
        return value

    # --- helpers ---
    def _dev(self, handle: _Handle) -> FakeGpu:
        g = handle.gpu
        if g.lose_after_samples is not None and g.samples > g.lose_after_samples:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return g

    # --- session ---
    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> _Handle:
        return _Handle(self.gpus[i])

    def nvmlDeviceGetIndex(self, h: _Handle) -> int:
        return h.gpu.index

    def nvmlSystemGetDriverVersion(self) -> str:
        return "575.57.08"

    def nvmlSystemGetNVMLVersion(self) -> str:
        return "12.575.57.08"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12090

    # --- inventory ---
    def nvmlDeviceGetName(self, h: _Handle) -> str:
        return self._dev(h).name

    def nvmlDeviceGetUUID(self, h: _Handle) -> str:
        return f"GPU-5d2c6f1e-0000-4000-8000-00000000000{self._dev(h).index}"

    def nvmlDeviceGetSerial(self, h: _Handle) -> str:
        return self._dev(h).serial

    def nvmlDeviceGetBoardPartNumber(self, h: _Handle) -> str:
        return "900-5G153-2200-000"

    def nvmlDeviceGetVbiosVersion(self, h: _Handle) -> str:
        return "98.02.2E.00.05"

    def nvmlDeviceGetPciInfo(self, h: _Handle) -> Any:
        g = self._dev(h)
        return SimpleNamespace(
            busId=g.bus_id.encode(), pciDeviceId=(g.device_id << 16) | 0x10DE, domain=0, bus=0, device=0
        )

    def nvmlDeviceGetMemoryInfo(self, h: _Handle) -> Any:
        total = self._dev(h).memory_mib * 1024 * 1024
        return SimpleNamespace(total=total, free=total - 500 * 1024 * 1024, used=500 * 1024 * 1024)

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._dev(h).pcie_max[0]

    def nvmlDeviceGetGpuMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._dev(h).pcie_max[0]

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: _Handle) -> int:
        return self._dev(h).pcie_max[1]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: _Handle) -> int:
        g = self._dev(h)
        return (g.pcie_load if g.loaded else g.pcie_idle)[0]

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: _Handle) -> int:
        g = self._dev(h)
        return (g.pcie_load if g.loaded else g.pcie_idle)[1]

    def nvmlDeviceGetEccMode(self, h: _Handle) -> list[int]:
        return list(self._dev(h).ecc_mode)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: _Handle) -> int:
        return self._dev(h).power_limit_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h: _Handle) -> int:
        return self._dev(h).power_limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, h: _Handle) -> int:
        return self._dev(h).power_limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: _Handle) -> list[int]:
        return [150_000, self._dev(h).power_limit_mw]

    def nvmlDeviceGetCudaComputeCapability(self, h: _Handle) -> tuple[int, int]:
        return self._dev(h).cc

    def nvmlDeviceGetTemperatureThreshold(self, h: _Handle, kind: int) -> int:
        g = self._dev(h)
        if kind == pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            return g.slowdown_c
        if kind == pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN:
            return g.shutdown_c
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    # --- telemetry (one call of nvmlDeviceGetPowerUsage counts one sample) ---
    def nvmlDeviceGetPowerUsage(self, h: _Handle) -> int:
        g = self._dev(h)
        g.samples += 1
        return g.power_load_mw if g.loaded else g.power_idle_mw

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        g = self._dev(h)
        return g.temp_load_c if g.loaded else g.temp_idle_c

    def nvmlDeviceGetClockInfo(self, h: _Handle, kind: int) -> int:
        self._dev(h)
        return 2280 if kind == pynvml.NVML_CLOCK_SM else 14001

    def nvmlDeviceGetUtilizationRates(self, h: _Handle) -> Any:
        g = self._dev(h)
        return SimpleNamespace(gpu=100 if g.loaded else 0, memory=60 if g.loaded else 0)

    def _reasons(self, h: _Handle) -> int:
        g = self._dev(h)
        return g.clock_events_load if g.loaded else 0x1

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: _Handle) -> int:
        return self._reasons(h)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: _Handle) -> int:  # the pre-R535 name
        return self._reasons(h)

    # --- counters ---
    def nvmlDeviceGetTotalEccErrors(self, h: _Handle, err: int, counter: int) -> int:
        g = self._dev(h)
        if not g.ecc_mode[0]:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        extra = g.ecc_after_load.get((err, counter), 0) if g.was_loaded else 0
        return g.ecc.get((err, counter), 0) + extra

    def nvmlDeviceGetRemappedRows(self, h: _Handle) -> tuple[int, int, int, int]:
        return self._dev(h).remapped_rows

    def nvmlDeviceGetPcieReplayCounter(self, h: _Handle) -> int:
        g = self._dev(h)
        return g.fields.get(pynvml.NVML_FI_DEV_PCIE_REPLAY_COUNTER, 0)

    def nvmlDeviceGetFieldValues(self, h: _Handle, ids: list[int]) -> list[Any]:
        g = self._dev(h)
        out = []
        for fid in ids:
            if fid in g.fields:
                value = g.fields[fid] + (g.fields_after_load.get(fid, 0) if g.was_loaded else 0)
                out.append(
                    SimpleNamespace(
                        fieldId=fid, nvmlReturn=0, valueType=3, value=SimpleNamespace(ullVal=value)
                    )
                )
            else:
                out.append(
                    SimpleNamespace(
                        fieldId=fid, nvmlReturn=pynvml.NVML_ERROR_NOT_SUPPORTED, valueType=3, value=None
                    )
                )
        return out

    # --- events ---
    def nvmlEventSetCreate(self) -> object:
        return object()

    def nvmlDeviceGetSupportedEventTypes(self, h: _Handle) -> int:
        g = self._dev(h)
        if not g.xid_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(pynvml.nvmlEventTypeXidCriticalError | pynvml.nvmlEventTypeDoubleBitEccError)

    def nvmlDeviceRegisterEvents(self, h: _Handle, mask: int, event_set: object) -> None:
        self._dev(h)

    def nvmlEventSetWait(self, event_set: object, timeout_ms: int) -> Any:
        with self._lock:
            for g in self.gpus:
                for n, (after, xid) in enumerate(g.xid_after_samples):
                    if g.samples >= after:
                        del g.xid_after_samples[n]
                        return SimpleNamespace(
                            device=_Handle(g),
                            eventType=pynvml.nvmlEventTypeXidCriticalError,
                            eventData=xid,
                            gpuInstanceId=0xFFFFFFFF,
                            computeInstanceId=0xFFFFFFFF,
                        )
        time.sleep(min(timeout_ms, 20) / 1000)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, event_set: object) -> None:
        return None


def healthy_result(device: Device, tflops: float = 95.0, gbs: float = 1500.0) -> GpuLoadResult:
    return GpuLoadResult(
        device=device,
        compute=ComputeResult(
            flops=tflops * 1e12, launches=40, mismatches=0, reference_digest="d" * 64, elapsed_s=10
        ),
        memory=MemoryResult(bytes_per_s=gbs * 1e9, passes=20, mismatched_words=0, tested_bytes=90 << 30),
    )


class FakeStressor:
    """Stands in for burnin.gpu_load.CudaStressor: CUDA ordinals in reverse NVML order (as fastest-first
    ordering can give), loads the fake GPUs for `run_s`, then returns the injected result per bus id."""

    def __init__(
        self, nvml: FakeNvml, results: dict[int, GpuLoadResult] | None = None, run_s: float = 0.3
    ) -> None:
        self.nvml = nvml
        self.run_s = run_s
        n = len(nvml.gpus)
        self._devices = [
            Device(ordinal=n - 1 - g.index, name=g.name, pci_bus_id=g.bus_id[4:], sm_count=188)
            for g in nvml.gpus
        ]
        self.results = {g.index: healthy_result(self._devices[g.index]) for g in nvml.gpus}
        self.results.update(results or {})
        self.calls: list[tuple[int, float, float, float]] = []

    def devices(self) -> list[Device]:
        return sorted(self._devices, key=lambda d: d.ordinal)

    def run(
        self,
        device: Device,
        compute_s: float,
        memory_s: float,
        memory_pct: float,
        stop: threading.Event,
        power_s: float = 0.0,
    ) -> GpuLoadResult:
        index = next(i for i, d in enumerate(self._devices) if d is device)
        gpu = self.nvml.gpus[index]
        self.calls.append((index, compute_s, memory_s, memory_pct))
        gpu.loaded = gpu.was_loaded = True
        started = time.time()
        stop.wait(self.run_s)
        gpu.loaded = False
        result = replace(self.results[index], device=device)
        if power_s > 0 and result.power.launches == 0 and result.power.error is None:
            # the whole run counts as the power phase (an injected PowerResult is kept as given)
            result.power = PowerResult(launches=10, started=started, ended=time.time())
        return result
