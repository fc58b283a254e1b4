"""The power phase: the tensor-core PTX (mma.sync m16n8k16, FP16 in, FP32 accumulate) checked in its
structure and its closed form, assembled by ptxas for sm_89/sm_90/sm_120, run beside the streaming kernel
through the stand-in libcuda, and the sustained-power verdict from NVML samples (fake NVML): at the limit,
held down by the hardware, held by nothing but the software cap."""

from __future__ import annotations

import re
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from burnin import gpu_ptx
from burnin.gpu_load import CudaStressor
from burnin.schema import Verdict
from burnin.suites import gpu as gpu_suite
from tests.support.fake_cuda import build_libcuda
from tests.support.fake_nvml import FakeGpu, FakeNvml
from tests.test_gpu_parsers import _ptxas
from tests.test_gpu_suite import Harness, find, four, run


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_libcuda(tmp_path_factory.mktemp("fakecuda"))


def test_the_power_ptx_is_tensor_core_work_on_full_toggle_data() -> None:
    ptx = gpu_ptx.POWER_PTX
    assert ptx.startswith(".version 7.0\n.target sm_80\n")  # mma m16n8k16 f16: sm_80 and later
    loop = ptx[ptx.index("MMA_LOOP:") : ptx.index("MMA_DONE:")]
    mmas = re.findall(
        r"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16\.f16\.f32 (\{[^}]*\}), (\{[^}]*\})", loop
    )
    assert len(mmas) == gpu_ptx.MMA_UNROLL * gpu_ptx.MMA_SETS
    assert len({d for d, _ in mmas}) == gpu_ptx.MMA_SETS  # independent accumulator sets
    a_order = [a for _, a in mmas[:: gpu_ptx.MMA_SETS]]
    assert a_order[0] != a_order[1] and a_order[::2] == [a_order[0]] * (
        gpu_ptx.MMA_UNROLL // 2
    )  # A0, A1, ...
    for n, a0 in enumerate(gpu_ptx.MMA_A0):
        a1 = gpu_ptx.MMA_A1[n]
        assert a0 ^ a1 == 0xFFFFFFFF  # every A bit toggles between consecutive mma
        assert a0 >> 16 == a0 & 0xFFFF  # both halves of a register equal: the pairs cancel exactly
    lo, hi = struct.unpack("<ee", struct.pack("<I", gpu_ptx.MMA_B))
    assert (lo, hi) == (-1.0, 1.0)
    for a in gpu_ptx.MMA_A0 + gpu_ptx.MMA_A1:
        (x, _) = struct.unpack("<ee", struct.pack("<I", a))
        assert x == x and abs(x) < 1e4  # finite FP16 values (no NaN, no Inf)


def test_the_closed_form_is_the_sum_of_the_start_values() -> None:
    words = struct.unpack(f"<{gpu_ptx.MMA_PERIOD}f", gpu_ptx.mma_closed_form())
    n = 4 * gpu_ptx.MMA_SETS
    assert [words[j] for j in (0, 1, 1023)] == [float(n * j + n * (n - 1) // 2) for j in (0, 1, 1023)]


@pytest.mark.parametrize("arch", ["sm_89", "sm_90", "sm_120"])  # L40S, H200, RTX PRO 6000 Blackwell
def test_the_power_ptx_assembles_without_spills(tmp_path: Path, arch: str) -> None:
    src = tmp_path / "power.ptx"
    src.write_text(gpu_ptx.POWER_PTX)
    out = subprocess.run(
        [_ptxas(), "--gpu-name", arch, "-v", str(src), "-o", str(tmp_path / "power.cubin")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Compiling entry function 'mma_burn'" in out.stderr
    assert not re.search(r"[1-9]\d* bytes spill stores", out.stderr)


def burn(lib: str) -> object:
    stressor = CudaStressor.open(lib)
    return stressor.run(stressor.devices()[0], 0.05, 0.05, 50, threading.Event(), power_s=0.2)


def test_the_power_phase_runs_beside_the_streaming_kernel(
    libcuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = burn(libcuda)
    p = r.power  # type: ignore[attr-defined]
    assert p.error is None and p.launches >= 1 and p.mismatches == 0 and p.ended >= p.started
    monkeypatch.setenv("FAKE_CUDA_MMA_FLIP_DEV", "0")
    p = burn(libcuda).power  # type: ignore[attr-defined]
    assert (
        p.launches >= 1 and p.mismatches == p.launches + 1
    )  # one flipped word per launch, the sizing one too
    monkeypatch.setenv("FAKE_CUDA_NO_MMA", "1")
    r = burn(libcuda)
    p = r.power  # type: ignore[attr-defined]
    assert p.launches == 0 and not p.fault and "CUDA_ERROR_INVALID_PTX" in (p.error or "")
    assert r.memory.passes >= 1 and r.memory.error is None  # type: ignore[attr-defined]  # the rest still ran


def test_the_suite_judges_the_tensor_core_output(
    tmp_path: Path, libcuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_MMA_FLIP_DEV", "0")  # CUDA ordinal 0 of 2 is NVML index 1
    h = Harness(tmp_path, {"count": 2}, {"memory_pct": 50, "copies": False})
    h.ctx.spec["duration_s"] = 1
    result = gpu_suite.run(h.ctx, lib=FakeNvml([FakeGpu(0), FakeGpu(1)]), stressor=CudaStressor.open(libcuda))
    assert find(result, "gpu_power_result", "gpu:0")[0].verdict is Verdict.PASS
    bad = find(result, "gpu_power_result", "gpu:1")[0]
    assert bad.verdict is Verdict.FAIL and "words differ" in bad.observed


@pytest.mark.parametrize(
    ("load_mw", "events", "verdict", "says"),
    [
        (290_000, 0x4, Verdict.PASS, "(96.7%)"),  # at the 300 W limit, SW power cap: what a full load shows
        (240_000, 0x80, Verdict.FAIL, "held down by HW power brake"),
        (240_000, 0x44, Verdict.FAIL, "held down by HW thermal slowdown"),
        (240_000, 0x4, Verdict.INCONCLUSIVE, "SW power cap: the load did not reach the limit"),
        (240_000, 0x0, Verdict.INCONCLUSIVE, "no clock-event reason"),
    ],
)
def test_sustained_power_against_the_enforced_limit(
    tmp_path: Path, load_mw: int, events: int, verdict: Verdict, says: str
) -> None:
    result, _, _ = run(tmp_path, four(power_load_mw=load_mw, clock_events_load=events))
    found = find(result, "gpu_sustained_power")
    assert len(found) == 4 and {f.verdict for f in found} == {verdict}
    assert says in found[0].observed and "(285 of 300 W)" in found[0].expected


def test_no_power_phase_asked_no_power_findings(tmp_path: Path) -> None:
    result, _, _ = run(tmp_path, four(), options={"power_share": 0})
    assert not find(result, "gpu_sustained_power") and not find(result, "gpu_power_result")
