"""The controller judges the all-reduce again from the agent's raw figures (measurements["nccl"];
provision/acceptance/validation/gpu_nccl.py), through validate() as a run is judged: the agent's suite
runs on captured all_reduce_perf outputs (good, slow, wrong values, truncated, not installed), then its
figures meet the profile's `gpu_floors.busbw_min_gbs` whatever plan the agent was given. Fails closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from burnin.schema import Finding, SuiteResult, Verdict
from burnin.suites import gpu as gpu_suite
from provision.acceptance.validation import validate
from provision.model.catalog import load_catalog
from provision.model.gpu_floors import GpuFloors, GpuNccl
from provision.model.profile import Profile
from tests.conftest import PROFILES
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor
from tests.test_gpu_nccl import DATA, suite_with_nccl
from tests.test_gpu_suite import EXPECT, Harness


def lust(**floors: Any) -> Profile:
    profile = load_catalog(PROFILES).profiles["circle-2-lust"]
    return profile.model_copy(update={"gpu_floors": GpuFloors(**floors)})


def agent_run(tmp_path: Path, name: str | None, agent_floor: float | None = 30.0) -> SuiteResult:
    """The agent's GPU suite on a captured output (None: all_reduce_perf not installed)."""
    text = None if name is None else (DATA / f"nccl_all_reduce_4gpu_{name}.txt").read_text()
    result, _ = suite_with_nccl(tmp_path, text, agent_floor)
    assert isinstance(result, SuiteResult)
    return result


def judged(profile: Profile, suite: SuiteResult) -> list[Finding]:
    return [f for f in validate(profile, suites=[suite]) if f.check == "gpu_nccl_floor"]


def raw_suite(nccl: Any) -> SuiteResult:
    return SuiteResult(
        suite="gpu", verdict=Verdict.PASS, started_at=0, ended_at=1, measurements={"nccl": nccl}
    )


GOOD = {
    "installed": True,
    "complete": True,
    "validated": True,
    "error": None,
    "busbw_gbs": 40.2,
    "avg_busbw_gbs": 20.0,
    "wrong": 0,
    "gpus": 4,
}


@pytest.mark.parametrize(
    ("name", "verdict", "says"),
    [
        ("good", Verdict.PASS, "0 wrong values, 4 GPUs, busbw 40.2 GB/s"),
        ("slow", Verdict.FAIL, "0 wrong values, 4 GPUs, busbw"),
        ("wrong", Verdict.FAIL, "786432 wrong values"),
        ("truncated", Verdict.INCONCLUSIVE, "all_reduce_perf output incomplete"),
    ],
)
def test_the_agents_figures_meet_the_profiles_floor(
    tmp_path: Path, name: str, verdict: Verdict, says: str
) -> None:
    (f,) = judged(lust(busbw_min_gbs=30), agent_run(tmp_path, name))
    assert (f.verdict, f.required, f.component) == (verdict, True, "node")
    assert f.expected == "all_reduce_perf over 4 GPUs: 0 wrong values, busbw >= 30 GB/s"
    assert says in f.observed and f.evidence == ["gpu.nccl"]


def test_a_plan_without_the_floor_does_not_pass_a_slow_node(tmp_path: Path) -> None:
    """The agent was given no floor and passed; the profile's floor (45 GB/s) fails the same figures."""
    suite = agent_run(tmp_path, "good", agent_floor=None)
    agent = next(f for f in suite.findings if f.check == "gpu_nccl_allreduce")
    assert agent.verdict is Verdict.PASS
    (f,) = judged(lust(busbw_min_gbs=45), suite)
    assert f.verdict is Verdict.FAIL and "busbw 40.2 GB/s" in f.observed


def test_not_installed_is_optional_unless_the_kickstart_installed_it(tmp_path: Path) -> None:
    suite = agent_run(tmp_path, None)
    (f,) = judged(lust(busbw_min_gbs=30), suite)
    assert (f.verdict, f.required, f.observed) == (
        Verdict.INCONCLUSIVE,
        False,
        "all_reduce_perf (nccl-tests) is not installed",
    )
    (f,) = judged(lust(busbw_min_gbs=30, nccl=GpuNccl(install=True)), suite)
    assert (f.verdict, f.required) == (Verdict.INCONCLUSIVE, True)
    agent = next(f for f in agent_run(tmp_path / "b", None).findings if f.check == "gpu_nccl_allreduce")
    assert agent.required is False  # this plan did not say the kickstart installed it


def test_no_figures_at_all(tmp_path: Path) -> None:
    bare = SuiteResult(suite="gpu", verdict=Verdict.PASS, started_at=0, ended_at=1, measurements={})
    (f,) = judged(lust(busbw_min_gbs=30), bare)
    assert (f.verdict, f.required, f.observed) == (
        Verdict.INCONCLUSIVE,
        True,
        "no all_reduce_perf figures reported",
    )
    assert judged(lust(), bare) == []  # nothing in the profile depends on it


@pytest.mark.parametrize(
    ("change", "verdict", "says"),
    [
        ({}, Verdict.PASS, "busbw 40.2 GB/s"),
        ({"wrong": 3}, Verdict.FAIL, "3 wrong values"),
        ({"wrong": "0"}, Verdict.INCONCLUSIVE, "#wrong not reported"),
        ({"wrong": None}, Verdict.INCONCLUSIVE, "#wrong not reported"),
        ({"wrong": True}, Verdict.INCONCLUSIVE, "#wrong not reported"),
        ({"gpus": 2}, Verdict.FAIL, "expected 4 GPUs"),
        ({"gpus": 0}, Verdict.INCONCLUSIVE, "GPUs taking part not reported"),
        ({"gpus": None}, Verdict.INCONCLUSIVE, "GPUs taking part not reported"),
        ({"busbw_gbs": 29.9}, Verdict.FAIL, "busbw 29.9 GB/s"),
        ({"busbw_gbs": None}, Verdict.INCONCLUSIVE, "busbw not reported"),
        ({"busbw_gbs": float("nan")}, Verdict.INCONCLUSIVE, "busbw not reported"),
        ({"busbw_gbs": "40"}, Verdict.INCONCLUSIVE, "busbw not reported"),
        ({"validated": False}, Verdict.INCONCLUSIVE, "without validation"),
        ({"complete": None}, Verdict.INCONCLUSIVE, "output incomplete"),
        ({"error": "timed out"}, Verdict.INCONCLUSIVE, "could not finish: timed out"),
        ({"error": "timed out", "wrong": 1}, Verdict.FAIL, "1 wrong values"),  # faults seen still fail
    ],
)
def test_raw_figures_table(change: dict[str, Any], verdict: Verdict, says: str) -> None:
    (f,) = judged(lust(busbw_min_gbs=30), raw_suite({**GOOD, **change}))
    assert f.verdict is verdict and says in f.observed, f.observed


def test_figures_that_are_not_a_mapping_are_inconclusive() -> None:
    (f,) = judged(lust(busbw_min_gbs=30), raw_suite([GOOD]))
    assert f.verdict is Verdict.INCONCLUSIVE and f.required


def test_wrong_values_fail_without_a_floor() -> None:
    (f,) = judged(lust(), raw_suite({**GOOD, "wrong": 5}))
    assert f.verdict is Verdict.FAIL and f.expected == "all_reduce_perf over 4 GPUs: 0 wrong values"


def test_the_agent_holds_a_kickstart_installed_nccl_tests_required(tmp_path: Path) -> None:
    """plan["expect"]["gpus"]["nccl_installed"] (gpu_floors.nccl.install): not installed is not optional."""
    expect = {**EXPECT, **lust(nccl=GpuNccl(install=True)).gpu_floors.expect()}  # type: ignore[union-attr]
    assert expect["nccl_installed"] is True
    h = Harness(tmp_path, expect, {"copies": False})
    lib = FakeNvml([FakeGpu(i) for i in range(4)])
    result = gpu_suite.run(h.ctx, lib=lib, stressor=FakeStressor(lib, None))
    f = next(f for f in result.findings if f.check == "gpu_nccl_allreduce")
    assert (f.verdict, f.required) == (Verdict.INCONCLUSIVE, True)
    assert result.measurements["nccl"]["installed"] is False
