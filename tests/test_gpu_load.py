"""The stressor's real ctypes code (burnin.gpu_load) against a stand-in libcuda built here from
tests/support/fake_libcuda.c: same driver-API symbols, memory in host RAM, the PTX kernels emulated in C.
It proves the host side (argument marshalling, launches, read-back, checks, error paths); the PTX itself
is checked by ptxas in test_gpu_parsers.py and on a real GPU by bench/device/gpu-check.sh."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from burnin import gpu_ptx
from burnin.gpu_load import CudaStressor, GpuLoadResult
from burnin.schema import Verdict
from burnin.suites import gpu as gpu_suite
from tests.conftest import require_tool
from tests.support.fake_nvml import FakeGpu, FakeNvml
from tests.test_gpu_suite import Harness, find

SOURCE = Path(__file__).parent / "support" / "fake_libcuda.c"


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = require_tool("cc")
    out = tmp_path_factory.mktemp("fakecuda") / "libcuda.so.1"
    subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(SOURCE), "-lm"], check=True, timeout=120
    )
    return str(out)


def burn(lib: str, ordinal: int = 0, compute_s: float = 0.2, memory_s: float = 0.1) -> GpuLoadResult:
    stressor = CudaStressor.open(lib)
    device = next(d for d in stressor.devices() if d.ordinal == ordinal)
    return stressor.run(device, compute_s, memory_s, 90, threading.Event())


def test_devices_and_a_clean_run(libcuda: str) -> None:
    stressor = CudaStressor.open(libcuda)
    devices = stressor.devices()
    assert [(d.ordinal, d.pci_bus_id, d.sm_count, d.threads_per_sm) for d in devices] == [
        (0, "0000:61:00.0", 1, 1536),
        (1, "0000:41:00.0", 1, 1536),
    ]
    a, b = burn(libcuda, 0), burn(libcuda, 1)
    for r in (a, b):
        assert r.compute.error is None and r.memory.error is None
        assert r.compute.launches >= 1 and r.compute.mismatches == 0 and (r.compute.flops or 0) > 0
        assert r.memory.passes >= 1 and r.memory.mismatched_words == 0 and (r.memory.bytes_per_s or 0) > 0
        granule = 1536 * 4 * 16  # one full wave (1 SM x 1536 threads), 4 vectors of 16 bytes each
        assert r.memory.tested_bytes == (16 << 20) * 90 // 100 // granule * granule
        assert (r.memory.copy_bytes_per_s or 0) > 0  # the cuMemcpyDtoD reference ran beside it
    assert a.compute.reference_digest == b.compute.reference_digest is not None


def test_memory_corruption_is_counted(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_CORRUPT_DEV", "1")
    r = burn(libcuda, 1)
    assert r.memory.passes >= 1 and r.memory.mismatched_words == r.memory.passes
    assert burn(libcuda, 0).memory.mismatched_words == 0


def test_compute_corruption_is_counted(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_FMA_FLIP_DEV", "0")
    monkeypatch.setenv("FAKE_CUDA_SMS", "2")  # 2 x 1536 threads: thread 1500 lies past the first period
    r = burn(libcuda, 0)
    assert r.compute.launches >= 1 and r.compute.mismatches == r.compute.launches  # one broken word each


def test_launch_failure_mid_load_is_a_fault(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_FAIL_DEV", "0")
    monkeypatch.setenv("FAKE_CUDA_FAIL_AFTER", "1")  # the reference launch passes, the load's first fails
    r = burn(libcuda, 0)
    assert r.compute.fault and "CUDA_ERROR_ECC_UNCORRECTABLE (214)" in (r.compute.error or "")
    assert r.memory.fault  # every later launch fails too


@pytest.mark.parametrize(
    "code,name", [(719, "CUDA_ERROR_LAUNCH_FAILED"), (700, "CUDA_ERROR_ILLEGAL_ADDRESS")]
)
def test_a_fault_on_the_very_first_launch_is_the_cards_fault(
    tmp_path: Path, libcuda: str, monkeypatch: pytest.MonkeyPatch, code: int, name: str
) -> None:
    monkeypatch.setenv("FAKE_CUDA_FAIL_DEV", "0")  # CUDA ordinal 0 is NVML index 1
    monkeypatch.setenv("FAKE_CUDA_FAIL_AFTER", "0")  # the reference launch itself fails
    monkeypatch.setenv("FAKE_CUDA_FAIL_CODE", str(code))
    r = burn(libcuda, 0)
    assert r.compute.launches == 0 and r.compute.fault and f"{name} ({code})" in (r.compute.error or "")
    h = Harness(tmp_path, {"count": 2}, {"memory_pct": 50})
    h.ctx.spec["duration_s"] = 1
    result = gpu_suite.run(h.ctx, lib=FakeNvml([FakeGpu(0), FakeGpu(1)]), stressor=CudaStressor.open(libcuda))
    bad = find(result, "gpu_stress_result", "gpu:1")[0]
    assert bad.verdict is Verdict.FAIL and name in bad.observed
    assert find(result, "gpu_stress_result", "gpu:0")[0].verdict is Verdict.PASS


def test_the_mismatch_counter_is_64_bit(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_CORRUPT_DEV", "0")
    monkeypatch.setenv("FAKE_CUDA_EXTRA_ERRORS", str(5 * 2**32 + 7))  # the stand-in's counter is u64
    r = burn(libcuda, 0)
    assert r.memory.passes >= 1 and r.memory.mismatched_words == r.memory.passes * (5 * 2**32 + 8)
    assert "red.global.add.u64" in gpu_ptx.PTX and "red.global.add.u32" not in gpu_ptx.PTX


def test_jit_refusal_is_a_setup_error_with_the_log(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_BAD_PTX", "1")
    r = burn(libcuda, 0)
    assert r.compute.error is not None and not r.compute.fault
    assert "CUDA_ERROR_INVALID_PTX" in r.compute.error and "fake JIT refused" in r.compute.error


def test_suite_over_the_real_loader(tmp_path: Path, libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_CORRUPT_DEV", "0")  # CUDA ordinal 0 is NVML index 1 (bus 0x61)
    h = Harness(tmp_path, {"count": 2}, {"memory_pct": 50})
    h.ctx.spec["duration_s"] = 1
    result = gpu_suite.run(h.ctx, lib=FakeNvml([FakeGpu(0), FakeGpu(1)]), stressor=CudaStressor.open(libcuda))
    assert find(result, "gpu_stress_result", "gpu:0")[0].verdict is Verdict.PASS
    bad = find(result, "gpu_stress_result", "gpu:1")[0]
    assert bad.verdict is Verdict.FAIL and "memory" in bad.observed and "memory 0 " not in bad.observed
    first = result.measurements["per_gpu"][0]
    assert first["mem_gbs"] > 0 and first["compute_mismatches"] == 0 and first["tflops"] is not None
