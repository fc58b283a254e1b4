"""gpu_burn and dcgmi parsers against captured outputs (tests/data/gpu, sources in its README), the
stressor's host-side checks, and the embedded PTX assembled by NVIDIA's real ptxas when installed."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from burnin import gpu_ptx
from burnin.gpu_load import digest, fma_mismatches
from burnin.gpu_parsers import parse_dcgm_diag, parse_gpu_burn
from burnin.schema import Verdict

DATA = Path(__file__).parent / "data" / "gpu"


@pytest.mark.parametrize(
    ("name", "verdict", "says"),
    [
        ("gpu_burn_faulty_16gpu.txt", Verdict.FAIL, "faulty GPUs 0, 1, 2"),
        ("gpu_burn_died_aborted.txt", Verdict.FAIL, "7 (all clients died, aborted)"),
        ("gpu_burn_init_error_prints_ok.txt", Verdict.INCONCLUSIVE, "could not initialise"),
        ("gpu_burn_no_progress_ok.txt", Verdict.INCONCLUSIVE, "did no work"),
        ("gpu_burn_healthy_2gpu.txt", Verdict.PASS, "2 GPUs OK"),
    ],
)
def test_gpu_burn_outputs(name: str, verdict: Verdict, says: str) -> None:
    got, observed = parse_gpu_burn((DATA / name).read_text()).verdict()
    assert got is verdict
    assert says in observed


def test_gpu_burn_fields() -> None:
    faulty = parse_gpu_burn((DATA / "gpu_burn_faulty_16gpu.txt").read_text())
    assert faulty.tested == 16 and len(faulty.gpus) == 16
    assert [g.errors for g in faulty.gpus[:3]] == [0, -524288000, -524288000]
    assert faulty.gpus[1].warned and not faulty.gpus[0].warned
    assert faulty.gpus[0].processed == 18000 and faulty.gpus[0].gflops == 6311
    died = parse_gpu_burn((DATA / "gpu_burn_died_aborted.txt").read_text())
    assert died.aborted and all(g.died for g in died.gpus) and died.tested is None
    healthy = parse_gpu_burn((DATA / "gpu_burn_healthy_2gpu.txt").read_text())
    assert [(g.status, g.processed, g.errors) for g in healthy.gpus] == [("OK", 23840, 0), ("OK", 23232, 0)]


def test_gpu_burn_empty_or_garbage_is_inconclusive() -> None:
    for text in ("", "Segmentation fault (core dumped)\n"):
        verdict, observed = parse_gpu_burn(text).verdict()
        assert verdict is Verdict.INCONCLUSIVE and "no final per-GPU table" in observed


def test_dcgm_all_skipped_is_inconclusive() -> None:
    report = parse_dcgm_diag((DATA / "dcgm3_r3_all_skipped.json").read_text())
    assert [t.name for t in report.tests] == ["PCIe", "GPU Memory", "Diagnostic", "Targeted Stress"]
    verdict, observed = report.verdict()
    assert verdict is Verdict.INCONCLUSIVE and observed.startswith("dcgmi diag ran nothing")


def test_dcgm4_failure_and_pass() -> None:
    text = (DATA / "dcgm4_r1_persistence_fail.json").read_text()
    report = parse_dcgm_diag(text)
    assert report.verdict() == (Verdict.FAIL, "dcgmi diag failed: software (gpu 0)")
    assert "Persistence mode" in report.tests[0].warnings[0]
    doc = json.loads(text)
    doc["DCGM Diagnostic"]["test_categories"][0]["tests"][0]["results"][0]["status"] = "Pass"
    assert parse_dcgm_diag(json.dumps(doc)).verdict()[0] is Verdict.PASS
    doc["DCGM Diagnostic"]["test_categories"][0]["tests"][0]["results"][1]["status"] = "Skip"
    assert parse_dcgm_diag(json.dumps(doc)).verdict() == (Verdict.INCONCLUSIVE, "dcgmi diag skipped software")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Error: unable to establish a connection to the specified host: localhost", "output is not JSON"),
        ('{"version": "4.2.3"}', "no 'DCGM Diagnostic' object"),
        (
            '{"DCGM Diagnostic": {"runtime_error": "GPU 0 is not supported", "test_categories": []}}',
            "runtime",
        ),
    ],
)
def test_dcgm_unparsable(text: str, error: str) -> None:
    verdict, observed = parse_dcgm_diag(text).verdict()
    assert verdict is Verdict.INCONCLUSIVE and error in observed


def _fma_output(blocks: int) -> bytes:
    period = b"".join(struct.pack("<f", 40.0 + k / 1024) for k in range(gpu_ptx.FMA_PERIOD))
    return period * (blocks * 256 // gpu_ptx.FMA_PERIOD)


def test_fma_output_checks_period_and_run_to_run() -> None:
    good = _fma_output(8)
    assert fma_mismatches(good, None) == 0 and fma_mismatches(good, good) == 0
    flipped = bytearray(good)
    flipped[4 * 1500] ^= 0x01  # one bit in a word of the second period
    assert fma_mismatches(bytes(flipped), None) == 1
    assert fma_mismatches(bytes(flipped), good) == 2  # breaks the period and differs from the first launch
    assert digest(good) == digest(_fma_output(132 * 8))  # comparable across GPUs of different sizes


def test_memory_pattern_is_a_bijection_on_low_words() -> None:
    seen = {gpu_ptx.pattern(i, 0) for i in range(1 << 16)}
    assert len(seen) == 1 << 16
    assert gpu_ptx.pattern(5, 0xFFFFFFFF) == gpu_ptx.pattern(5, 0) ^ 0xFFFFFFFF
    assert gpu_ptx.pattern((7 << 32) | 3, 0) == gpu_ptx.pattern(3, 0) ^ 7


def test_ptx_declares_the_kernels_the_loader_launches() -> None:
    entries = dict(re.findall(r"\.visible \.entry (\w+)\(([^)]*)\)", gpu_ptx.PTX))
    assert tuple(entries) == gpu_ptx.KERNELS
    assert [len(entries[k].split(",")) for k in gpu_ptx.KERNELS] == [2, 3, 4]
    assert gpu_ptx.PTX.count("fma.rn.f32") == gpu_ptx.FMA_PER_TRIP


def _ptxas() -> str:
    found = shutil.which("ptxas")
    if found:
        return found
    try:
        import nvidia.cuda_nvcc as nvcc  # type: ignore[import-untyped, unused-ignore]  # ships ptxas (dev dependency)
    except ImportError:
        pytest.skip("ptxas is not installed (pip install nvidia-cuda-nvcc-cu12)")
    candidate = Path(next(iter(nvcc.__path__))) / "bin" / "ptxas"
    if not candidate.exists():
        pytest.skip(f"ptxas is not at {candidate}")
    return str(candidate)


@pytest.mark.parametrize("arch", ["sm_89", "sm_90", "sm_120"])  # L40S, H200, RTX PRO 6000 Blackwell
def test_ptx_assembles_with_nvidia_ptxas(tmp_path: Path, arch: str) -> None:
    ptxas = _ptxas()
    src = tmp_path / "stress.ptx"
    src.write_text(gpu_ptx.PTX)
    out = subprocess.run(
        [ptxas, "--gpu-name", arch, "-v", str(src), "-o", str(tmp_path / "stress.cubin")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for kernel in gpu_ptx.KERNELS:
        assert f"Compiling entry function '{kernel}'" in out.stderr
    assert "spill" in out.stderr and "bytes spill stores" in out.stderr
    assert not re.search(r"[1-9]\d* bytes spill stores", out.stderr)


@pytest.mark.parametrize(
    ("expected", "verdict"),
    [(None, Verdict.PASS), (2, Verdict.PASS), (4, Verdict.FAIL), (1, Verdict.FAIL)],
)
def test_gpu_burn_tested_count_against_expected(expected: int | None, verdict: Verdict) -> None:
    got, observed = parse_gpu_burn((DATA / "gpu_burn_healthy_2gpu.txt").read_text()).verdict(expected)
    assert got is verdict, observed
    if verdict is Verdict.FAIL:
        assert observed == f"gpu_burn tested 2 GPUs (2 reported), expected {expected}"


def test_dcgm_runtime_error_does_not_hide_a_fail() -> None:
    report = parse_dcgm_diag((DATA / "dcgm4_r1_fail_with_runtime_error.json").read_text())
    verdict, observed = report.verdict()
    assert verdict is Verdict.FAIL, observed
    assert "software (gpu 0)" in observed and "runtime error" in observed
    # a runtime_error with nothing failed stays inconclusive
    no_fail = parse_dcgm_diag('{"DCGM Diagnostic": {"runtime_error": "boom", "test_categories": []}}')
    assert no_fail.verdict()[0] is Verdict.INCONCLUSIVE
