"""The power phase of the built-in stressor: the tensor-core kernel (gpu_ptx.POWER_PTX, mma_burn) and
the 128-bit memory-streaming kernel (mem_write) launched together on two streams of one GPU, so the
board draws what a mixed real load draws, toward its enforced power limit. Every mma_burn output is
checked against its closed form (gpu_ptx.mma_closed_form). The NVML samples taken between `started`
and `ended` are what burnin.gpu_power_verdicts judges.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from burnin import gpu_ptx

CALIBRATION_ITERS = 64  # mma_burn loop trips of the sizing launch
ROUND_S = 0.5  # each round: one mma_burn launch and streaming launches of about the same length
STREAM_MAX_BYTES = 512 << 20  # the streaming buffer: up to 512 MiB, at most a quarter of free memory
MAX_STREAM_LAUNCHES = 20000


@dataclass
class PowerResult:
    launches: int = 0  # mma_burn launches completed (each beside a mem_write pass)
    mismatches: int = 0  # mma_burn output words differing from the closed form
    started: Optional[float] = None  # epoch seconds: both kernels running from here ...
    ended: Optional[float] = None  # ... to here
    error: Optional[str] = None
    fault: bool = False


def run_power(k: Any, res: PowerResult, duration_s: float, stop: threading.Event) -> None:
    """`k`: the GPU's burnin.gpu_load._Kernels (its context current in this thread). Rounds of one
    mma_burn launch on one stream and enough mem_write launches on another to last as long, both sized
    by a first timed launch of each, until `duration_s` has passed."""
    lib, s = k.lib, k.s
    fn = k.load_power()
    words = k.blocks * k.threads_per_block
    out, buf = ctypes.c_uint64(), ctypes.c_uint64()
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    s._check("cuMemGetInfo", lib.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)))
    granule = k.mem_blocks * k.threads_per_block * gpu_ptx.MEM_UNROLL * gpu_ptx.MEM_VEC_BYTES
    size = max(1, min(STREAM_MAX_BYTES, free.value // 4) // granule) * granule
    streams = [ctypes.c_void_p(), ctypes.c_void_p()]
    s._check("cuMemAlloc", lib.cuMemAlloc_v2(ctypes.byref(out), ctypes.c_size_t(words * 4)))
    try:
        s._check("cuMemAlloc", lib.cuMemAlloc_v2(ctypes.byref(buf), ctypes.c_size_t(size)))
        for st in streams:
            s._check("cuStreamCreate", lib.cuStreamCreate(ctypes.byref(st), 0))
        expected = gpu_ptx.mma_closed_form()
        host = ctypes.create_string_buffer(words * 4)
        n_vec, seed = ctypes.c_uint64(size // gpu_ptx.MEM_VEC_BYTES), ctypes.c_uint32(0x5A5A5A5A)

        def mma(iters: int) -> None:
            k.launch_on(fn, k.blocks, streams[0], out, ctypes.c_uint32(iters))

        def stream_pass() -> None:
            k.launch_on(k.fn["mem_write"], k.mem_blocks, streams[1], buf, n_vec, seed)

        t_mma = _wall(s, lib, streams, lambda: mma(CALIBRATION_ITERS))
        res.mismatches += _check_output(s, lib, host, out, words, expected)
        iters = int(min(1 << 22, max(CALIBRATION_ITERS, CALIBRATION_ITERS * ROUND_S / max(t_mma, 1e-6))))
        t_mem = _wall(s, lib, streams, stream_pass)
        passes = int(min(MAX_STREAM_LAUNCHES, max(1, ROUND_S / max(t_mem, 1e-6))))
        deadline = time.monotonic() + duration_s
        res.started = time.time()
        while (res.launches == 0 or time.monotonic() < deadline) and not stop.is_set():
            mma(iters)
            for _ in range(passes):
                stream_pass()
            for st in streams:
                s._check("cuStreamSynchronize", lib.cuStreamSynchronize(st))
            res.launches += 1
            res.mismatches += _check_output(s, lib, host, out, words, expected)
        res.ended = time.time()
    finally:
        for st in streams:
            if st.value:
                lib.cuStreamDestroy_v2(st)
        lib.cuMemFree_v2(out)
        if buf.value:
            lib.cuMemFree_v2(buf)


def _wall(s: Any, lib: Any, streams: Any, work: Any) -> float:
    """Host seconds for `work` and both streams to finish (for sizing only)."""
    t = time.monotonic()
    work()
    for st in streams:
        s._check("cuStreamSynchronize", lib.cuStreamSynchronize(st))
    return time.monotonic() - t


def _check_output(s: Any, lib: Any, host: Any, out: ctypes.c_uint64, words: int, expected: bytes) -> int:
    """mma_burn output words differing from the closed form."""
    s._check("cuMemcpyDtoH", lib.cuMemcpyDtoH_v2(host, out, ctypes.c_size_t(words * 4)))
    data = host.raw
    want = (expected * (len(data) // len(expected) + 1))[: len(data)]
    if data == want:
        return 0
    return sum(1 for o in range(0, len(data), 4) if data[o : o + 4] != want[o : o + 4])
