"""The built-in GPU stressor: the CUDA driver API (libcuda.so.1, via ctypes) running the PTX kernels of
burnin.gpu_ptx, JIT-compiled by the driver. No CUDA toolkit on the host.

One worker thread per GPU: a compute phase (fma_burn launches, every output checked) then a memory phase
(mem_write + mem_check passes over most of the free memory, mismatched words counted on the GPU).
Results are plain dataclasses; CUDA handles never leave this module.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional

from burnin import cuda_api, gpu_ptx
from burnin.gpu_power import PowerResult, run_power

THREADS_PER_BLOCK = 256
REFERENCE_ITERS = 1024  # the launch every GPU runs identically: its digest is compared across GPUs
SPOT_WORDS = 256  # words of each memory pass the host reads back and checks itself, per window
LAUNCH_TARGET_S = 0.25  # compute launches are sized to about this long (short: stop stays responsive)
# Errors a kernel raises on the card itself, whenever they happen (the first launch included): the
# card's fault, never a setup problem. 214 ECC_UNCORRECTABLE, 700 ILLEGAL_ADDRESS, 714
# HARDWARE_STACK_ERROR, 715 ILLEGAL_INSTRUCTION, 716 MISALIGNED_ADDRESS, 717 INVALID_ADDRESS_SPACE,
# 718 INVALID_PC, 719 LAUNCH_FAILED. A driver that cannot load or a JIT refusal is not among them.
_DEVICE_FAULTS = frozenset((214, 700, 714, 715, 716, 717, 718, 719))


class CudaUnavailable(Exception):
    """libcuda cannot be loaded or initialised here."""


class CudaError(Exception):
    def __init__(self, call: str, code: int, name: str) -> None:
        super().__init__(f"{call} failed: {name} ({code})")
        self.call = call
        self.code = code
        self.name = name


@dataclass
class Device:
    ordinal: int
    name: str
    pci_bus_id: str  # as CUDA writes it: "0000:41:00.0"
    sm_count: int
    threads_per_sm: int = 2048  # CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR (1536 on sm_89/sm_120)


@dataclass
class ComputeResult:
    flops: Optional[float] = None  # achieved FP32 FLOP/s over the timed launches
    launches: int = 0
    mismatches: int = 0  # output words differing from the period or from the first timed launch
    reference_digest: Optional[str] = None  # sha256 of the REFERENCE_ITERS launch's first period
    # output words differing from the closed-form value (gpu_ptx.fma_closed_form), every launch's every
    # word; a Python int, so it never wraps (the results carry it as a JSON integer)
    closed_form_mismatches: int = 0
    elapsed_s: float = 0.0
    error: Optional[str] = None
    fault: bool = False  # the error happened mid-load (a GPU fault), not while setting up


@dataclass
class MemoryResult:
    bytes_per_s: Optional[float] = None  # write + read-back bytes over kernel time
    passes: int = 0
    mismatched_words: int = 0  # per pass the larger of the GPU's own count and the host's spot check
    tested_bytes: int = 0  # bytes written and checked by at least one whole pass; 0 before one completed
    spot_mismatches: int = 0  # words of the host's read-back windows differing from gpu_ptx.pattern
    # the reference: cuMemcpyDtoD of the same traffic (half the buffer onto the other half), read +
    # written bytes over its time; None when it did not run
    copy_bytes_per_s: Optional[float] = None
    error: Optional[str] = None
    fault: bool = False


@dataclass
class GpuLoadResult:
    device: Device
    compute: ComputeResult = field(default_factory=ComputeResult)
    memory: MemoryResult = field(default_factory=MemoryResult)
    power: PowerResult = field(default_factory=PowerResult)


def fma_mismatches(data: bytes, first: Optional[bytes]) -> int:
    """Words of an fma_burn output that break its period, plus words differing from the first launch."""
    period = gpu_ptx.FMA_PERIOD * 4
    head = data[:period]
    bad = 0
    if data != head * (len(data) // period):
        bad += sum(
            1 for o in range(period, len(data), 4) if data[o : o + 4] != head[o % period : o % period + 4]
        )
    if first is not None and data != first:
        bad += sum(1 for o in range(0, min(len(data), len(first)), 4) if data[o : o + 4] != first[o : o + 4])
    return bad


def closed_form_mismatches(data: bytes, period: bytes) -> int:
    """Words of an fma_burn output differing from the closed-form period (gpu_ptx.fma_closed_form)."""
    n = len(data) // 4
    expected = (period * (n // gpu_ptx.FMA_PERIOD + 1))[: n * 4]
    if data[: n * 4] == expected:
        return 0
    return sum(1 for o in range(0, n * 4, 4) if data[o : o + 4] != expected[o : o + 4])


def spot_windows(n_words: int) -> List[int]:
    """Start words of the host's read-back windows: the buffer's start, middle and end."""
    starts = [0, max(0, n_words // 2 - SPOT_WORDS // 2), max(0, n_words - SPOT_WORDS)]
    return sorted(set(starts))


def spot_mismatches(words: List[int], start: int, seed: int) -> int:
    """Words read back from [start, start + len(words)) that differ from the memory kernels' pattern."""
    return sum(1 for i, w in enumerate(words) if w != gpu_ptx.pattern(start + i, seed))


def mem_blocks(device: Device) -> int:
    """Blocks of one full wave of the memory kernels: SMs x max threads per SM / threads per block."""
    return max(1, device.sm_count * device.threads_per_sm // THREADS_PER_BLOCK)


def digest(data: bytes) -> str:
    return hashlib.sha256(data[: gpu_ptx.FMA_PERIOD * 4]).hexdigest()


class CudaStressor:
    """Drives every visible GPU through libcuda. open() raises CudaUnavailable when there is none."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    @classmethod
    def open(cls, path: str = "libcuda.so.1") -> "CudaStressor":
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise CudaUnavailable(f"{path} cannot be loaded: {exc}") from None
        missing = cuda_api.bind(lib)
        if missing:
            raise CudaUnavailable(f"{path} lacks {', '.join(missing)} (driver too old)")
        stressor = cls(lib)
        try:
            stressor._check("cuInit", lib.cuInit(0))
        except CudaError as exc:
            raise CudaUnavailable(str(exc)) from None
        return stressor

    def _check(self, call: str, code: int) -> None:
        if code != 0:
            name = ctypes.c_char_p()
            self._lib.cuGetErrorName(code, ctypes.byref(name))
            raise CudaError(call, code, (name.value or b"?").decode())

    def devices(self) -> List[Device]:
        lib, out = self._lib, []
        n = ctypes.c_int()
        self._check("cuDeviceGetCount", lib.cuDeviceGetCount(ctypes.byref(n)))
        for ordinal in range(n.value):
            dev = ctypes.c_int()
            self._check("cuDeviceGet", lib.cuDeviceGet(ctypes.byref(dev), ordinal))
            name = ctypes.create_string_buffer(256)
            self._check("cuDeviceGetName", lib.cuDeviceGetName(name, 256, dev))
            bus = ctypes.create_string_buffer(64)
            self._check("cuDeviceGetPCIBusId", lib.cuDeviceGetPCIBusId(bus, 64, dev))
            sms, per_sm = ctypes.c_int(), ctypes.c_int()
            self._check(
                "cuDeviceGetAttribute",
                lib.cuDeviceGetAttribute(ctypes.byref(sms), cuda_api.ATTR_MULTIPROCESSOR_COUNT, dev),
            )
            self._check(
                "cuDeviceGetAttribute",
                lib.cuDeviceGetAttribute(
                    ctypes.byref(per_sm), cuda_api.ATTR_MAX_THREADS_PER_MULTIPROCESSOR, dev
                ),
            )
            out.append(Device(ordinal, name.value.decode(), bus.value.decode(), sms.value, per_sm.value))
        return out

    def run(
        self,
        device: Device,
        compute_s: float,
        memory_s: float,
        memory_pct: float,
        stop: threading.Event,
        power_s: float = 0.0,
    ) -> GpuLoadResult:
        """Compute, memory, then (power_s > 0) the power phase on one GPU, in the calling thread (which
        owns the context)."""
        result = GpuLoadResult(device)
        lib = self._lib
        dev = ctypes.c_int()
        ctx = ctypes.c_void_p()
        try:
            self._check("cuDeviceGet", lib.cuDeviceGet(ctypes.byref(dev), device.ordinal))
            self._check("cuCtxCreate", lib.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev))
        except CudaError as exc:
            result.compute.error = result.memory.error = str(exc)
            return result
        try:
            module = self._load_module()
            _Kernels(self, module, device).run(result, compute_s, memory_s, memory_pct, stop, power_s)
        except CudaError as exc:
            result.compute.error = result.compute.error or str(exc)
        finally:
            lib.cuCtxDestroy_v2(ctx)
        return result

    def _load_module(self, text: str = gpu_ptx.PTX) -> ctypes.c_void_p:
        module = ctypes.c_void_p()
        log = ctypes.create_string_buffer(8192)
        # CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6 (the size goes as the pointer).
        opts = (ctypes.c_int * 2)(5, 6)
        vals = (ctypes.c_void_p * 2)(ctypes.cast(log, ctypes.c_void_p), ctypes.c_void_p(8192))
        ptx = ctypes.c_char_p(text.encode())
        code = self._lib.cuModuleLoadDataEx(ctypes.byref(module), ptx, 2, opts, vals)
        if code != 0:
            name = ctypes.c_char_p()
            self._lib.cuGetErrorName(code, ctypes.byref(name))
            jit_log = log.value.decode(errors="replace")[:300]
            raise CudaError(f"cuModuleLoadDataEx ({jit_log})", code, (name.value or b"?").decode())
        return module


class _Kernels:
    """The launches of one GPU inside its current context."""

    def __init__(self, stressor: CudaStressor, module: ctypes.c_void_p, device: Device) -> None:
        self.s = stressor
        self.lib = stressor._lib
        self.threads_per_block = THREADS_PER_BLOCK
        self.fn = {}
        for name in gpu_ptx.KERNELS:
            f = ctypes.c_void_p()
            self.s._check(
                "cuModuleGetFunction", self.lib.cuModuleGetFunction(ctypes.byref(f), module, name.encode())
            )
            self.fn[name] = f
        # One full wave: every SM holds max-threads-per-SM threads (2048 on sm_90, 1536 on sm_89/sm_120),
        # so no partial tail wave. fma_burn keeps a multiple of 4 blocks (its output is whole periods).
        self.mem_blocks = mem_blocks(device)
        self.blocks = max(4, self.mem_blocks // 4 * 4)
        self.start, self.end = ctypes.c_void_p(), ctypes.c_void_p()
        self.s._check("cuEventCreate", self.lib.cuEventCreate(ctypes.byref(self.start), 0))
        self.s._check("cuEventCreate", self.lib.cuEventCreate(ctypes.byref(self.end), 0))

    def run(
        self,
        result: GpuLoadResult,
        compute_s: float,
        memory_s: float,
        memory_pct: float,
        stop: threading.Event,
        power_s: float = 0.0,
    ) -> None:
        try:
            self.compute(result.compute, compute_s, stop)
        except CudaError as exc:
            result.compute.error = str(exc)
            result.compute.fault = result.compute.launches > 0 or exc.code in _DEVICE_FAULTS
        try:
            self.memory(result.memory, memory_s, memory_pct, stop)
        except CudaError as exc:
            result.memory.error = str(exc)
            result.memory.fault = result.memory.passes > 0 or exc.code in _DEVICE_FAULTS
        if power_s <= 0:
            return
        try:
            run_power(self, result.power, power_s, stop)
        except CudaError as exc:
            result.power.error = str(exc)
            result.power.fault = result.power.launches > 0 or exc.code in _DEVICE_FAULTS

    def load_power(self) -> ctypes.c_void_p:
        """mma_burn, from its own module (sm_80+: a card or driver that refuses it fails this phase only)."""
        module = self.s._load_module(gpu_ptx.POWER_PTX)
        f = ctypes.c_void_p()
        self.s._check(
            "cuModuleGetFunction", self.lib.cuModuleGetFunction(ctypes.byref(f), module, b"mma_burn")
        )
        return f

    def launch_on(self, fn: ctypes.c_void_p, blocks: int, stream: Any, *args: Any) -> None:
        params = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args])
        code = self.lib.cuLaunchKernel(fn, blocks, 1, 1, THREADS_PER_BLOCK, 1, 1, 0, stream, params, None)
        self.s._check("cuLaunchKernel", code)

    def launch(self, name: str, *args: Any) -> None:
        params = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args])
        blocks = self.blocks if name == "fma_burn" else self.mem_blocks
        code = self.lib.cuLaunchKernel(
            self.fn[name], blocks, 1, 1, THREADS_PER_BLOCK, 1, 1, 0, None, params, None
        )
        self.s._check(f"cuLaunchKernel({name})", code)

    def timed(self, name: str, *args: Any) -> float:
        self.s._check("cuEventRecord", self.lib.cuEventRecord(self.start, None))
        self.launch(name, *args)
        self.s._check("cuEventRecord", self.lib.cuEventRecord(self.end, None))
        self.s._check("cuEventSynchronize", self.lib.cuEventSynchronize(self.end))
        ms = ctypes.c_float()
        self.s._check(
            "cuEventElapsedTime", self.lib.cuEventElapsedTime(ctypes.byref(ms), self.start, self.end)
        )
        return ms.value / 1000.0

    def compute(self, res: ComputeResult, duration_s: float, stop: threading.Event) -> None:
        words = self.blocks * THREADS_PER_BLOCK
        out = ctypes.c_uint64()
        self.s._check("cuMemAlloc", self.lib.cuMemAlloc_v2(ctypes.byref(out), ctypes.c_size_t(words * 4)))
        host = ctypes.create_string_buffer(words * 4)
        try:
            seconds = self.timed("fma_burn", out, ctypes.c_uint32(REFERENCE_ITERS))
            data = self.fetch(host, out, words)
            res.reference_digest = digest(data)
            res.mismatches += fma_mismatches(data, None)
            res.closed_form_mismatches += closed_form_mismatches(
                data, gpu_ptx.fma_closed_form(REFERENCE_ITERS)
            )
            iters = int(
                min(1 << 22, max(REFERENCE_ITERS, REFERENCE_ITERS * LAUNCH_TARGET_S / max(seconds, 1e-6)))
            )
            first: Optional[bytes] = None
            expected = gpu_ptx.fma_closed_form(iters)
            deadline = time.monotonic() + duration_s
            flop = 0.0
            while time.monotonic() < deadline and not stop.is_set():
                res.elapsed_s += self.timed("fma_burn", out, ctypes.c_uint32(iters))
                res.launches += 1
                flop += 2.0 * words * iters * gpu_ptx.FMA_PER_TRIP
                data = self.fetch(host, out, words)
                res.mismatches += fma_mismatches(data, first)
                res.closed_form_mismatches += closed_form_mismatches(data, expected)
                first = data if first is None else first
            res.flops = flop / res.elapsed_s if res.elapsed_s > 0 else None
        finally:
            self.lib.cuMemFree_v2(out)

    def memory(self, res: MemoryResult, duration_s: float, memory_pct: float, stop: threading.Event) -> None:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.s._check("cuMemGetInfo", self.lib.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)))
        granule = self.mem_blocks * THREADS_PER_BLOCK * gpu_ptx.MEM_UNROLL * gpu_ptx.MEM_VEC_BYTES
        size = int(free.value * memory_pct / 100) // granule * granule
        if size == 0:
            raise CudaError(
                f"cuMemGetInfo ({free.value} bytes free, one grid trip is {granule})", 2, "too little"
            )
        buf, errors = ctypes.c_uint64(), ctypes.c_uint64()
        for _ in range(6):  # other allocations (the driver's own) can make "free" optimistic: shrink, retry
            code = self.lib.cuMemAlloc_v2(ctypes.byref(buf), ctypes.c_size_t(size))
            if code == 0 or size <= granule:
                break
            size = max(granule, size * 9 // 10 // granule * granule)
        self.s._check("cuMemAlloc", code)
        try:
            self.s._check("cuMemAlloc", self.lib.cuMemAlloc_v2(ctypes.byref(errors), ctypes.c_size_t(8)))
            count = ctypes.c_uint64()  # the kernel's counter is u64: 2**32 bad words must not wrap to few
            n_vec = ctypes.c_uint64(size // gpu_ptx.MEM_VEC_BYTES)
            seconds = 0.0
            deadline = time.monotonic() + duration_s
            while (res.passes == 0 or time.monotonic() < deadline) and not stop.is_set():
                # Alternate a pattern with its complement so every cell holds a 0 and a 1 across two passes.
                base = ((res.passes // 2) * 0x9E3779B9) & 0xFFFFFFFF
                seed = ctypes.c_uint32(base ^ (0xFFFFFFFF if res.passes % 2 else 0))
                self.s._check(
                    "cuMemsetD32", self.lib.cuMemsetD32_v2(errors, ctypes.c_uint32(0), ctypes.c_size_t(2))
                )
                seconds += self.timed("mem_write", buf, n_vec, seed)
                seconds += self.timed("mem_check", buf, n_vec, seed, errors)
                self.s._check(
                    "cuMemcpyDtoH", self.lib.cuMemcpyDtoH_v2(ctypes.byref(count), errors, ctypes.c_size_t(8))
                )
                spot = self.spot_check(buf, size // 4, seed.value)
                res.spot_mismatches += spot
                res.mismatched_words += max(count.value, spot)
                res.passes += 1
                res.tested_bytes = size  # a whole pass written and checked
            res.bytes_per_s = 2.0 * size * res.passes / seconds if seconds > 0 else None
            res.copy_bytes_per_s = self.reference_copy(buf, size)
        finally:
            self.lib.cuMemFree_v2(buf)
            if errors.value:
                self.lib.cuMemFree_v2(errors)

    def reference_copy(self, buf: ctypes.c_uint64, size: int) -> Optional[float]:
        """cuMemcpyDtoD of the buffer's first half onto its second (after the last pass): the driver's
        own copy moving the same bytes (read + written) as one kernel pass; best of 3, bytes/s."""
        half = size // 2
        src, dst = ctypes.c_uint64(buf.value or 0), ctypes.c_uint64((buf.value or 0) + half)
        best = None
        for _ in range(3):
            self.s._check("cuEventRecord", self.lib.cuEventRecord(self.start, None))
            self.s._check("cuMemcpyDtoD", self.lib.cuMemcpyDtoD_v2(dst, src, ctypes.c_size_t(half)))
            self.s._check("cuEventRecord", self.lib.cuEventRecord(self.end, None))
            self.s._check("cuEventSynchronize", self.lib.cuEventSynchronize(self.end))
            ms = ctypes.c_float()
            self.s._check(
                "cuEventElapsedTime", self.lib.cuEventElapsedTime(ctypes.byref(ms), self.start, self.end)
            )
            if ms.value > 0:
                rate = 2.0 * half / (ms.value / 1000.0)
                best = rate if best is None else max(best, rate)
        return best

    def spot_check(self, buf: ctypes.c_uint64, n_words: int, seed: int) -> int:
        """The host's own check of a pass: windows read back and compared with gpu_ptx.pattern, so a
        mem_check that counts nothing (a broken kernel, a broken card) cannot pass the pass alone."""
        host = ctypes.create_string_buffer(SPOT_WORDS * 4)
        bad = 0
        for start in spot_windows(n_words):
            count = min(SPOT_WORDS, n_words - start)
            src = ctypes.c_uint64((buf.value or 0) + start * 4)
            self.s._check("cuMemcpyDtoH", self.lib.cuMemcpyDtoH_v2(host, src, ctypes.c_size_t(count * 4)))
            bad += spot_mismatches(list(struct.unpack_from(f"<{count}I", host.raw)), start, seed)
        return bad

    def fetch(self, host: Any, dptr: ctypes.c_uint64, words: int) -> bytes:
        self.s._check("cuMemcpyDtoH", self.lib.cuMemcpyDtoH_v2(host, dptr, ctypes.c_size_t(words * 4)))
        return bytes(host.raw)
