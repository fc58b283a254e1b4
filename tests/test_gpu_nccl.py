"""nccl-tests' all_reduce_perf and `dcgmi diag` held to the profile: parser tables of outputs (good, slow,
wrong values, truncated; DCGM pass / fail at our limits) and the suite's runs through the harness's
tool runner (tests/test_gpu_suite.Harness), a missing tool included."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnin.gpu_dcgm_params import dcgm_argv, dcgm_parameters
from burnin.gpu_nccl import argv, parse_all_reduce
from burnin.gpu_parsers import parse_dcgm_diag
from burnin.schema import Verdict
from burnin.suites import gpu as gpu_suite
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor
from tests.test_gpu_suite import EXPECT, Harness, find

DATA = Path(__file__).parent / "data" / "gpu"


@pytest.mark.parametrize(
    ("name", "floor", "verdict", "says"),
    [
        ("good", 30.0, Verdict.PASS, "0 wrong values, busbw 40.2 GB/s at 4294967296 B"),
        ("good", None, Verdict.PASS, "no busbw floor in the profile"),
        ("slow", 30.0, Verdict.FAIL, "below the floor"),
        ("wrong", 30.0, Verdict.FAIL, "786432 wrong values"),  # 262144 in each column + out of bounds
        ("wrong", None, Verdict.FAIL, "wrong values"),
        ("truncated", 30.0, Verdict.INCONCLUSIVE, "output incomplete (22 rows, no average)"),
    ],
)
def test_all_reduce_table(name: str, floor: float | None, verdict: Verdict, says: str) -> None:
    report = parse_all_reduce((DATA / f"nccl_all_reduce_4gpu_{name}.txt").read_text())
    got, observed = report.verdict(floor, 4)
    assert got is verdict and says in observed, observed


def test_all_reduce_figures_and_edge_cases() -> None:
    good = parse_all_reduce((DATA / "nccl_all_reduce_4gpu_good.txt").read_text())
    assert (len(good.rows), good.ranks, good.rows[-1].size) == (30, 4, 4 << 30)
    assert good.peak_busbw is not None and 39.5 < good.peak_busbw < 40.5 and good.avg_busbw is not None
    assert good.verdict(30.0, 8)[0] is Verdict.FAIL  # ran on 4 of 8 GPUs
    text = (DATA / "nccl_all_reduce_4gpu_good.txt").read_text()
    no_check = "\n".join(
        line[: line.rindex(" 0")] + "N/A" if line.endswith("      0") else line for line in text.splitlines()
    )
    assert parse_all_reduce(no_check).verdict(30.0, 4) == (
        Verdict.INCONCLUSIVE,
        "all_reduce_perf ran without validation (#wrong N/A)",
    )
    assert parse_all_reduce("").verdict(None, 4)[0] is Verdict.INCONCLUSIVE
    # No device lines (another output layout): which GPUs took part is unknown, never a pass.
    no_devices = "\n".join(line for line in text.splitlines() if " device " not in line)
    unknown = parse_all_reduce(no_devices)
    assert unknown.ranks == 0 and unknown.rows
    assert unknown.verdict(30.0, 4)[0] is Verdict.INCONCLUSIVE
    assert "listed no devices" in unknown.verdict(None, 4)[1]
    assert argv(4) == ["all_reduce_perf", "-b", "8", "-e", "4G", "-f", "2", "-g", "4"]


@pytest.mark.parametrize(
    ("name", "verdict", "says"),
    [
        ("dcgm4_r3_pass_4gpu.json", Verdict.PASS, ""),
        ("dcgm4_r3_fail_our_limits_4gpu.json", Verdict.FAIL, "pcie (gpu 2)"),
    ],
)
def test_dcgm_table(name: str, verdict: Verdict, says: str) -> None:
    got, observed = parse_dcgm_diag((DATA / name).read_text()).verdict()
    assert got is verdict and says in observed, observed


def test_dcgm_parameters_come_from_the_profile() -> None:
    exp = {
        "power_limit_w": 350,
        "mem_bandwidth_gbs": 864,
        "mem_floor_pct": 80,
        "pcie_gen": 4,
        "pcie_width": 16,
    }
    assert dcgm_parameters(exp) == [
        "targeted_power.target_power=332.5",
        "memory_bandwidth.minimum_bandwidth=691200",
        "pcie.h2d_d2h_single_pinned.min_pci_generation=4.0",
        "pcie.h2d_d2h_single_pinned.min_pci_width=16.0",
        "pcie.h2d_d2h_single_unpinned.min_pci_generation=4.0",
        "pcie.h2d_d2h_single_unpinned.min_pci_width=16.0",
    ]
    assert dcgm_argv(1, {}) == ["dcgmi", "diag", "-r", "1", "-j"]  # nothing known: DCGM's own defaults


def suite_with_nccl(tmp_path: Path, output: str | None, floor: float | None = 30.0) -> tuple[object, Harness]:
    expect = {**EXPECT, "pcie_floor_pct": 75, **({"busbw_min_gbs": floor} if floor else {})}
    h = Harness(tmp_path, expect, {"copies": False})
    if output is not None:
        h.tool_output["gpu.nccl"] = output
    lib = FakeNvml([FakeGpu(i) for i in range(4)])
    return gpu_suite.run(h.ctx, lib=lib, stressor=FakeStressor(lib, None)), h


@pytest.mark.parametrize(
    ("name", "verdict"), [("good", Verdict.PASS), ("slow", Verdict.FAIL), ("wrong", Verdict.FAIL)]
)
def test_the_suite_runs_all_reduce_over_every_gpu(tmp_path: Path, name: str, verdict: Verdict) -> None:
    result, h = suite_with_nccl(tmp_path, (DATA / f"nccl_all_reduce_4gpu_{name}.txt").read_text())
    assert argv(4) in h.tools
    f = find(result, "gpu_nccl_allreduce")[0]  # type: ignore[arg-type]
    assert (f.verdict, f.required) == (verdict, True) and "busbw >= 30 GB/s" in f.expected
    assert result.measurements["nccl"]["gpus"] == 4  # type: ignore[attr-defined]


def test_no_nccl_tests_installed_is_an_optional_inconclusive(tmp_path: Path) -> None:
    result, _ = suite_with_nccl(tmp_path, None)
    f = find(result, "gpu_nccl_allreduce")[0]  # type: ignore[arg-type]
    assert (f.verdict, f.required, f.observed) == (
        Verdict.INCONCLUSIVE,
        False,
        "all_reduce_perf (nccl-tests) is not installed",
    )


def test_the_profiles_sustain_pct_is_dcgms_power_target_and_the_power_phases_floor() -> None:
    from provision.model.gpu_floors import GpuFloors

    exp = {**GpuFloors(sustain_pct=90).expect(), "power_limit_w": 300}
    assert (exp["sustain_pct"], exp["dcgm_power_pct"]) == (
        90,
        90,
    )  # burnin.gpu_power_verdicts reads sustain_pct
    assert dcgm_parameters(exp)[0] == "targeted_power.target_power=270.0"
    assert dcgm_parameters({"power_limit_w": 300})[0] == "targeted_power.target_power=285.0"  # default 95%
