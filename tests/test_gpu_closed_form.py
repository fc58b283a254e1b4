"""Issue #13, GPU side of the evidence contract: results checked against their closed-form values (not
only against each other), GPU memory tested per GPU, a crashed load thread that fails closed, and the
soak hook (burnin.suites.gpu.soak_load). NVML and CUDA are faked (no GPU here): the fake NVML keeps
pynvml's constants, the stand-in libcuda (tests/support/fake_libcuda.c) runs the stressor's real ctypes
code with device buffers in host RAM."""

from __future__ import annotations

import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from burnin import gpu_ptx
from burnin.gpu_load import CudaStressor, GpuLoadResult, closed_form_mismatches, spot_mismatches
from burnin.schema import Verdict
from burnin.suites import gpu as gpu_suite
from tests.conftest import require_tool
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor, healthy_result
from tests.test_gpu_suite import Harness, find, four, run

SOURCE = Path(__file__).parent / "support" / "fake_libcuda.c"


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = require_tool("cc")
    out = tmp_path_factory.mktemp("fakecuda") / "libcuda.so.1"
    subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(SOURCE), "-lm"], check=True, timeout=120
    )
    return str(out)


# ---- closed-form values ----------------------------------------------------------------------------


def fma_reference(iters: int) -> list[float]:
    """The chain worked out independently of gpu_ptx: x -> 10 - x, 8 chains, iters * 8 steps, summed."""
    out = []
    for j in range(gpu_ptx.FMA_PERIOD):
        chains = [k + 1 + j / 1024 for k in range(8)]
        for _ in range(iters * 8 % 2):
            chains = [10 - c for c in chains]
        out.append(sum(chains))
    return out


@pytest.mark.parametrize("iters", [0, 1, 1024, 4097])
def test_fma_closed_form_is_the_chain_worked_out_exactly(iters: int) -> None:
    period = gpu_ptx.fma_closed_form(iters)
    assert list(struct.unpack(f"<{gpu_ptx.FMA_PERIOD}f", period)) == fma_reference(iters)
    assert struct.unpack("<2f", period[:8]) == (36.0, 36.0078125)  # 1..8 summed; + 8/1024


def test_a_correct_buffer_passes_and_one_flipped_word_is_counted() -> None:
    period = gpu_ptx.fma_closed_form(1024)
    good = period * 5 + period[:400]  # not a whole number of periods
    assert closed_form_mismatches(good, period) == 0
    flipped = bytearray(good)
    flipped[4 * 3000] ^= 0x01
    assert closed_form_mismatches(bytes(flipped), period) == 1


def test_a_result_every_gpu_gets_wrong_alike_is_caught_only_by_the_closed_form() -> None:
    """The old checks compare GPUs and launches with each other: a systematic error passes them."""
    from burnin.gpu_load import fma_mismatches

    period = bytearray(gpu_ptx.fma_closed_form(1024))
    period[4 * 7] ^= 0x80  # the same wrong word in every period, on every launch
    wrong = bytes(period) * 4
    assert fma_mismatches(wrong, wrong) == 0  # periodic and identical: the old comparison sees nothing
    assert closed_form_mismatches(wrong, gpu_ptx.fma_closed_form(1024)) == 4


def test_memory_pattern_spot_check_against_its_closed_form() -> None:
    words = [gpu_ptx.pattern(1000 + i, 0xDEADBEEF) for i in range(256)]
    assert spot_mismatches(words, 1000, 0xDEADBEEF) == 0
    words[17] ^= 1 << 20
    assert spot_mismatches(words, 1000, 0xDEADBEEF) == 1


def test_the_real_stressor_checks_every_launch_against_the_closed_form(libcuda: str) -> None:
    stressor = CudaStressor.open(libcuda)
    device = stressor.devices()[0]
    r = stressor.run(device, 0.2, 0.1, 90, threading.Event())
    assert r.compute.launches >= 1 and r.compute.closed_form_mismatches == 0
    assert r.memory.passes >= 1 and r.memory.spot_mismatches == 0 and r.memory.mismatched_words == 0


def test_the_real_stressor_counts_a_flipped_word_against_the_closed_form(
    libcuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_FMA_FLIP_DEV", "0")  # one flipped word on every launch after the first
    monkeypatch.setenv("FAKE_CUDA_SMS", "2")  # 2 x 1536 threads: the flipped thread 1500 exists
    stressor = CudaStressor.open(libcuda)
    r = stressor.run(stressor.devices()[0], 0.2, 0.1, 90, threading.Event())
    assert r.compute.launches >= 1 and r.compute.closed_form_mismatches == r.compute.launches


def test_the_host_spot_check_sees_what_the_device_check_sees(
    libcuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_CORRUPT_DEV", "0")  # the middle word flipped before each check
    stressor = CudaStressor.open(libcuda)
    r = stressor.run(stressor.devices()[0], 0.05, 0.1, 90, threading.Event())
    assert r.memory.passes >= 1 and r.memory.spot_mismatches == r.memory.passes
    assert r.memory.mismatched_words == r.memory.passes  # the larger of the two counts, not their sum


def test_a_closed_form_mismatch_fails_the_gpu(tmp_path: Path) -> None:
    bad = healthy_result(device=None)  # type: ignore[arg-type]
    bad.compute.closed_form_mismatches = 2**40  # counts are unbounded ints: nothing wraps
    result, _, _ = run(tmp_path, four(), results={2: bad})
    stress = find(result, "gpu_stress_result", "gpu:2")[0]
    assert stress.verdict is Verdict.FAIL
    assert f"{2**40} compute words differ from the closed-form value" in stress.observed
    assert find(result, "gpu_stress_result", "gpu:1")[0].verdict is Verdict.PASS
    assert result.measurements["per_gpu"][2]["closed_form_mismatches"] == 2**40


# ---- GPU memory tested -----------------------------------------------------------------------------


def test_per_gpu_memory_total_and_tested(tmp_path: Path) -> None:
    faulted = healthy_result(device=None)  # type: ignore[arg-type]
    faulted.memory.passes, faulted.memory.tested_bytes = 0, 0
    faulted.memory.error, faulted.memory.fault = (
        "cuLaunchKernel(mem_write) failed: CUDA_ERROR_LAUNCH_FAILED (719)",
        True,
    )
    unverified = healthy_result(device=None)  # type: ignore[arg-type]
    unverified.memory.passes = 0  # bytes claimed, but no pass wrote and checked them
    result, _, _ = run(tmp_path, four(), results={1: faulted, 3: unverified})
    per_gpu = result.measurements["per_gpu"]
    assert [p["memory_total_mib"] for p in per_gpu] == [97887] * 4
    assert [p["tested_mib"] for p in per_gpu] == [90 * 1024, 0, 90 * 1024, 0]


def test_tested_bytes_count_only_after_a_whole_pass(libcuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CUDA_FAIL_DEV", "0")
    monkeypatch.setenv("FAKE_CUDA_FAIL_AFTER", "0")  # every launch fails: no pass completes
    stressor = CudaStressor.open(libcuda)
    r = stressor.run(stressor.devices()[0], 0.05, 0.05, 90, threading.Event())
    assert r.memory.passes == 0 and r.memory.tested_bytes == 0 and r.memory.error


# ---- a crashed load thread -------------------------------------------------------------------------


class CrashingStressor(FakeStressor):
    """Its run() raises for one GPU, as a bug or a driver crash in the load thread would."""

    def __init__(self, nvml: FakeNvml, crash_index: int) -> None:
        super().__init__(nvml)
        self.crash_index = crash_index

    def run(
        self,
        device: Any,
        compute_s: float,
        memory_s: float,
        memory_pct: float,
        stop: threading.Event,
        power_s: float = 0.0,
    ) -> GpuLoadResult:
        if device is self._devices[self.crash_index]:
            raise RuntimeError("cuCtxSynchronize returned garbage")
        return super().run(device, compute_s, memory_s, memory_pct, stop, power_s)


def test_a_crashed_load_thread_is_inconclusive_naming_the_gpu(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    lib = FakeNvml(four())
    result = gpu_suite.run(h.ctx, lib=lib, stressor=CrashingStressor(lib, 2))
    crash = find(result, "suite_thread", "gpu:2")[0]
    assert crash.verdict is Verdict.INCONCLUSIVE and crash.required
    assert crash.observed == "crashed: RuntimeError: cuCtxSynchronize returned garbage"
    tb = next(e for e in result.evidence if e.id in crash.evidence)
    assert "Traceback" in tb.excerpt and "CrashingStressor" not in (tb.error or "")
    stress = find(result, "gpu_stress_result", "gpu:2")[0]
    assert stress.verdict is Verdict.INCONCLUSIVE and "load thread crashed" in stress.observed
    assert find(result, "gpu_stress_result", "gpu:0")[0].verdict is Verdict.PASS
    assert result.verdict is Verdict.INCONCLUSIVE and result.error and "gpu2" in result.error


# ---- the soak hook ---------------------------------------------------------------------------------


class TimedStressor(FakeStressor):
    """Loads for the time it is asked (compute + memory + power), like the real stressor."""

    def run(
        self,
        device: Any,
        compute_s: float,
        memory_s: float,
        memory_pct: float,
        stop: threading.Event,
        power_s: float = 0.0,
    ) -> GpuLoadResult:
        self.run_s = compute_s + memory_s + power_s
        return super().run(device, compute_s, memory_s, memory_pct, stop, power_s)


def test_soak_load_runs_every_gpu_for_the_duration_and_judges_faults(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    gpus = four()
    gpus[3].xid_after_samples = [(2, 79)]
    lib = FakeNvml(gpus)
    out = gpu_suite.soak_load(h.ctx, 1.0, lib=lib, stressor=TimedStressor(lib))
    assert out["gpus"] == 4 and out["joined"] == [0, 1, 2, 3] and out["error"] is None
    start, end = out["window"]
    assert 0.9 <= end - start <= 3.0
    assert out["peak_gpu_power_w"] == 4 * 290.0 and out["max_temp_c"] == 70
    by = {(f.check, f.component.split(" ")[0]): f for f in out["findings"]}
    assert by[("gpu_xid", "gpu:3")].verdict is Verdict.FAIL
    assert by[("gpu_stress_result", "gpu:0")].verdict is Verdict.PASS
    assert not any(f.check.startswith("gpu_throughput") for f in out["findings"])
    assert "gpu" in h.samplers  # telemetry sees the GPUs' power and temperatures during the soak


def test_soak_load_that_cannot_start_is_inconclusive(tmp_path: Path) -> None:
    import pynvml

    h = Harness(tmp_path)
    out = gpu_suite.soak_load(h.ctx, 1.0, lib=FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    (f,) = out["findings"]
    assert (f.check, f.verdict, f.required) == ("soak_gpu_load", Verdict.INCONCLUSIVE, True)
    assert "NVMLError_DriverNotLoaded" in f.observed and out["joined"] == [] and out["window"] is None


def test_soak_load_without_cuda_is_a_load_that_could_not_start(tmp_path: Path) -> None:
    class NoCuda(FakeStressor):
        def devices(self) -> list[Any]:
            from burnin.gpu_load import CudaUnavailable

            raise CudaUnavailable("libcuda.so.1 cannot be loaded")

    h = Harness(tmp_path)
    lib = FakeNvml([FakeGpu(0), FakeGpu(1)])
    out = gpu_suite.soak_load(h.ctx, 0.5, lib=lib, stressor=NoCuda(lib))
    stress = [f for f in out["findings"] if f.check == "gpu_stress_result"]
    assert [f.verdict for f in stress] == [Verdict.INCONCLUSIVE] * 2
    assert "libcuda.so.1 cannot be loaded" in stress[0].observed
    assert out["joined"] == [] and out["window"] is None
