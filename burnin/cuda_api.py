"""The CUDA driver API functions the agent calls, with their C signatures: one declaration table.

`bind(lib)` sets `restype` and `argtypes` on every function of DECLARATIONS in a loaded libcuda, so
ctypes converts each argument to its C type (a Python int passed for a 64-bit CUdeviceptr or a size_t
is never truncated to a C int) and checks the argument count. Every libcuda call the agent makes goes
through a function declared here (tests/test_gpu_ctypes.py checks the call sites against this table).

NVML is reached only through pynvml (burnin.nvml), which declares its own calls: the agent makes no
ctypes call into libnvidia-ml itself.

Types: CUresult is a C int; CUdevice an int; CUdeviceptr an unsigned 64-bit integer; contexts,
modules, functions, streams and events are opaque pointers; pointer arguments are void pointers
(ctypes.byref(x), arrays and string buffers convert to them).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List, Tuple

_P = ctypes.c_void_p
_I = ctypes.c_int
_U = ctypes.c_uint
_SZ = ctypes.c_size_t
_DPTR = ctypes.c_uint64

# name -> argtypes; every function returns CUresult (C int).
DECLARATIONS: Dict[str, Tuple[Any, ...]] = {
    "cuInit": (_U,),
    "cuGetErrorName": (_I, _P),
    "cuDeviceGetCount": (_P,),
    "cuDeviceGet": (_P, _I),
    "cuDeviceGetName": (ctypes.c_char_p, _I, _I),
    "cuDeviceGetPCIBusId": (ctypes.c_char_p, _I, _I),
    "cuDeviceGetAttribute": (_P, _I, _I),
    "cuDeviceCanAccessPeer": (_P, _I, _I),
    "cuCtxCreate_v2": (_P, _U, _I),
    "cuCtxDestroy_v2": (_P,),
    "cuCtxSetCurrent": (_P,),
    "cuCtxSynchronize": (),
    "cuCtxEnablePeerAccess": (_P, _U),
    "cuModuleLoadDataEx": (_P, ctypes.c_char_p, _U, _P, _P),
    "cuModuleGetFunction": (_P, _P, ctypes.c_char_p),
    "cuLaunchKernel": (_P, _U, _U, _U, _U, _U, _U, _U, _P, _P, _P),
    "cuEventCreate": (_P, _U),
    "cuEventDestroy_v2": (_P,),
    "cuEventRecord": (_P, _P),
    "cuEventSynchronize": (_P,),
    "cuEventElapsedTime": (_P, _P, _P),
    "cuStreamCreate": (_P, _U),
    "cuStreamDestroy_v2": (_P,),
    "cuStreamSynchronize": (_P,),
    "cuMemGetInfo_v2": (_P, _P),
    "cuMemAlloc_v2": (_P, _SZ),
    "cuMemFree_v2": (_DPTR,),
    "cuMemHostAlloc": (_P, _SZ, _U),
    "cuMemFreeHost": (_P,),
    "cuMemsetD32_v2": (_DPTR, _U, _SZ),
    "cuMemcpyDtoH_v2": (_P, _DPTR, _SZ),
    "cuMemcpyHtoD_v2": (_DPTR, _P, _SZ),
    "cuMemcpyDtoD_v2": (_DPTR, _DPTR, _SZ),
    "cuMemcpyHtoDAsync_v2": (_DPTR, _P, _SZ, _P),
    "cuMemcpyDtoHAsync_v2": (_P, _DPTR, _SZ, _P),
    "cuMemcpyPeerAsync": (_DPTR, _P, _DPTR, _P, _SZ, _P),
}

# CUdevice_attribute values the agent reads.
ATTR_MULTIPROCESSOR_COUNT = 16
ATTR_MAX_THREADS_PER_MULTIPROCESSOR = 39


def bind(lib: Any) -> List[str]:
    """Declare every function of DECLARATIONS on `lib` (a ctypes.CDLL); the names this libcuda lacks
    (an old driver) are returned, and calling one of them later raises AttributeError."""
    missing = []
    for name, argtypes in DECLARATIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = ctypes.c_int
        fn.argtypes = list(argtypes)
    return missing
