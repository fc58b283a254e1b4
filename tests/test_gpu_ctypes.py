"""Every ctypes call into libcuda is declared (burnin.cuda_api), the memory kernels are 128-bit and
sized to whole waves of the device, all against the stand-in libcuda built from
tests/support/fake_libcuda.c."""

from __future__ import annotations

import ast
import ctypes
import re
import subprocess
import threading
from pathlib import Path

import pytest

from burnin import cuda_api, gpu_ptx
from burnin.gpu_load import CudaStressor, CudaUnavailable, Device, mem_blocks
from tests.conftest import require_tool
from tests.support.fake_cuda import build_libcuda

BURNIN = Path(__file__).resolve().parent.parent / "burnin"


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_libcuda(tmp_path_factory.mktemp("fakecuda"))


def cuda_calls() -> dict[str, list[str]]:
    """Every `<anything>.cuXxx` attribute named in burnin/, with where."""
    found: dict[str, list[str]] = {}
    for path in sorted(BURNIN.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and re.fullmatch(r"cu[A-Z]\w+", node.attr):
                found.setdefault(node.attr, []).append(f"{path.name}:{node.lineno}")
    return found


def test_every_libcuda_function_the_agent_calls_is_declared() -> None:
    calls = cuda_calls()
    assert {"cuLaunchKernel", "cuMemcpyPeerAsync", "cuMemHostAlloc", "cuMemcpyDtoD_v2"} <= set(calls)
    undeclared = {name: where for name, where in calls.items() if name not in cuda_api.DECLARATIONS}
    assert undeclared == {}


def test_the_agent_makes_no_ctypes_call_into_nvml_itself() -> None:
    """NVML goes through pynvml, which declares its own calls; only gpu_load opens a library."""
    opened = [p.name for p in BURNIN.rglob("*.py") if "CDLL(" in p.read_text()]
    assert opened == ["gpu_load.py"]
    assert not [p.name for p in BURNIN.rglob("*.py") if re.search(r"CDLL\([^)]*nvidia-ml", p.read_text())]


def test_the_stand_in_has_every_declared_function_and_bind_declares_them(libcuda: str) -> None:
    lib = ctypes.CDLL(libcuda)
    assert cuda_api.bind(lib) == []
    for name, argtypes in cuda_api.DECLARATIONS.items():
        fn = getattr(lib, name)
        assert fn.restype is ctypes.c_int and list(fn.argtypes) == list(argtypes), name


def test_declared_calls_carry_64_bit_pointers_and_count_arguments(libcuda: str) -> None:
    stressor = CudaStressor.open(libcuda)
    lib = stressor._lib
    dptr = ctypes.c_uint64()
    assert lib.cuMemAlloc_v2(ctypes.byref(dptr), 64) == 0
    # a plain Python int as a CUdeviceptr: converted to 64 bits, not truncated to a C int
    assert lib.cuMemsetD32_v2(int(dptr.value), 0xA5A5A5A5, 16) == 0
    out = ctypes.create_string_buffer(64)
    assert lib.cuMemcpyDtoH_v2(out, int(dptr.value), 64) == 0
    assert out.raw == b"\xa5" * 64
    with pytest.raises(TypeError, match="at least 3 arguments"):
        lib.cuMemsetD32_v2(int(dptr.value), 0)  # a missing argument is refused, not read from garbage
    with pytest.raises(ctypes.ArgumentError):
        lib.cuMemsetD32_v2(int(dptr.value), 0, "16")  # a wrong type too
    lib.cuMemFree_v2(dptr)


def test_a_driver_lacking_a_declared_function_is_unavailable(tmp_path: Path) -> None:
    cc = require_tool("cc")
    src = tmp_path / "old.c"
    src.write_text("int cuInit(unsigned f) { (void)f; return 0; }\n")
    lib = tmp_path / "libcuda.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=60)
    with pytest.raises(CudaUnavailable, match=r"lacks .*cuLaunchKernel"):
        CudaStressor.open(str(lib))


def test_memory_kernels_are_128_bit_with_several_loads_in_flight() -> None:
    check = gpu_ptx._MEM_CHECK
    loop = check[check.index("C_LOOP:") : check.index("C_DONE:")]
    loads = [n for n, line in enumerate(loop.splitlines()) if "ld.global.v4.u32" in line]
    compares = [n for n, line in enumerate(loop.splitlines()) if "setp.ne.u32" in line]
    assert len(loads) == gpu_ptx.MEM_UNROLL and max(loads) < min(compares)  # all issued before a compare
    assert "ld.global.u32" not in gpu_ptx.PTX and "st.global.u32" not in gpu_ptx.PTX
    assert gpu_ptx._MEM_WRITE.count("st.global.v4.u32") == gpu_ptx.MEM_UNROLL
    assert check.count("red.global.add.u64") == 1  # one atomic per thread, after its loop


def test_the_grid_is_one_full_wave_of_the_device() -> None:
    assert mem_blocks(Device(0, "H200", "", 132, 2048)) == 132 * 8
    assert mem_blocks(Device(0, "RTX PRO 6000", "", 188, 1536)) == 188 * 6  # sm_120: 1536 threads per SM
    assert mem_blocks(Device(0, "L40S", "", 142, 1536)) == 142 * 6


@pytest.mark.parametrize("sms,per_sm", [(3, 1536), (2, 2048)])
def test_the_stand_in_accepts_the_stressors_grid(
    libcuda: str, monkeypatch: pytest.MonkeyPatch, sms: int, per_sm: int
) -> None:
    """The stand-in refuses a memory launch that is not one full wave or whole grid trips."""
    monkeypatch.setenv("FAKE_CUDA_SMS", str(sms))
    monkeypatch.setenv("FAKE_CUDA_THREADS_PER_SM", str(per_sm))
    stressor = CudaStressor.open(libcuda)
    device = stressor.devices()[0]
    assert (device.sm_count, device.threads_per_sm) == (sms, per_sm)
    r = stressor.run(device, 0.05, 0.05, 90, threading.Event())
    assert r.memory.error is None and r.memory.passes >= 1 and r.memory.mismatched_words == 0
    assert r.memory.tested_bytes % (sms * per_sm * gpu_ptx.MEM_UNROLL * gpu_ptx.MEM_VEC_BYTES) == 0
    assert r.memory.copy_bytes_per_s is not None


def test_a_wrong_grid_is_refused_by_the_stand_in(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a device claiming 2048 threads per SM to a stressor told 1536."""
    stressor = CudaStressor.open(libcuda)
    device = stressor.devices()[0]
    monkeypatch.setenv("FAKE_CUDA_THREADS_PER_SM", "2048")
    r = stressor.run(device, 0.05, 0.05, 90, threading.Event())
    assert r.memory.passes == 0 and "(1)" in (r.memory.error or "")
