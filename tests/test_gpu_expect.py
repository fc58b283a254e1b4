"""plan["expect"]["gpus"] from the shipped profiles, and the GPU suite judging fake cards of each
profile against it: the profile, the expectation keys and the verdicts agree end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from burnin.schema import Verdict
from burnin.suites import gpu as gpu_suite
from provision.agent.gpu_expect import gpu_expect
from provision.model.catalog import load_catalog
from tests.conftest import PROFILES
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor, healthy_result
from tests.test_gpu_suite import Harness, find


def test_expect_of_the_gpu_profiles() -> None:
    profiles = load_catalog(PROFILES).profiles
    lust = gpu_expect(profiles["circle-2-lust"])
    assert lust["count"] == 4 and lust["name"].endswith("Max-Q Workstation Edition")
    assert (lust["pcie_gen"], lust["pcie_width"], lust["power_limit_w"], lust["fp32_tflops"]) == (
        5,
        16,
        300,
        110,
    )
    assert lust["feed_continuous_w"] == 30 * 208 * 0.8
    assert lust["non_gpu_draw_w"] == 2 * 400 + 700
    heresy = gpu_expect(profiles["circle-6-heresy"])
    assert (heresy["count"], heresy["name"], heresy["memory_mib"], heresy["pcie_gen"]) == (
        4 // 2,
        "NVIDIA L40S",
        46068,
        4,
    )
    assert gpu_expect(profiles["circle-1-limbo"])["count"] == 0
    for name in ("circle-2-lust", "circle-6-heresy"):  # the suite is in both plans of both GPU profiles
        plans = profiles[name].burnin
        assert all(any(s.suite == "gpu" for s in p.suites) for p in (plans.quick, plans.acceptance))


L40S = {
    "name": "NVIDIA L40S",
    "memory_mib": 46068,
    "device_id": 0x26B9,
    "pcie_max": (4, 16),
    "pcie_load": (4, 16),
    "power_limit_mw": 350_000,
    "power_load_mw": 345_000,
    "cc": (8, 9),
}


@pytest.mark.parametrize(
    ("profile", "cards", "tflops", "gbs"),
    [
        ("circle-2-lust", [FakeGpu(i) for i in range(4)], 80.0, 1500.0),
        ("circle-6-heresy", [FakeGpu(i, **L40S) for i in range(2)], 70.0, 780.0),  # type: ignore[arg-type]
    ],
)
def test_profile_expectations_judge_matching_cards(
    tmp_path: Path, profile: str, cards: list[FakeGpu], tflops: float, gbs: float
) -> None:
    expect = gpu_expect(load_catalog(PROFILES).profiles[profile])
    lib = FakeNvml(cards)
    stressor = FakeStressor(lib, {g.index: healthy_result(None, tflops, gbs) for g in cards})  # type: ignore[arg-type]
    assert expect["pcie_floor_pct"] == 75 and expect["mem_floor_pct"] == 80  # gpu_floors + acceptance
    # the copies need libcuda (tests/test_gpu_copies.py); this fake stressor has none, so they are off here
    no_copies = {"copies": False}
    result = gpu_suite.run(Harness(tmp_path, expect, no_copies).ctx, lib=lib, stressor=stressor)
    assert result.verdict is Verdict.PASS, [f for f in result.findings if f.verdict is not Verdict.PASS]
    assert find(result, "gpu_pci_device_id", "gpu:0")[0].verdict is Verdict.PASS
    slow = FakeStressor(lib, {0: healthy_result(None, expect["fp32_tflops"] * 0.4, gbs)})  # type: ignore[arg-type]
    for g in cards:
        g.samples = 0
    result = gpu_suite.run(Harness(tmp_path, expect, no_copies).ctx, lib=lib, stressor=slow)
    assert find(result, "gpu_throughput_compute_floor", "gpu:0")[0].verdict is Verdict.FAIL
    # memory at 78% of the datasheet bandwidth: below the 80% floor
    slow = FakeStressor(lib, {0: healthy_result(None, tflops, expect["mem_bandwidth_gbs"] * 0.78)})  # type: ignore[arg-type]
    for g in cards:
        g.samples = 0
    result = gpu_suite.run(Harness(tmp_path, expect, no_copies).ctx, lib=lib, stressor=slow)
    assert find(result, "gpu_throughput_memory_floor", "gpu:0")[0].verdict is Verdict.FAIL
