"""Every measured GPU figure is held to its class's golden capture (issue 19, item 7; SuperBench's rule):
TFLOP/s, memory GB/s, H2D and D2H GB/s, peer GB/s, NCCL bus bandwidth and sustained watts, in both GPU
profiles, each part against the golden host's median: more than 5% below warns, more than the profile's
limit (10%) below fails. Run through validate() on the committed run's GPU figures."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from burnin.schema import SuiteResult, Verdict
from provision.acceptance.golden import capture
from provision.acceptance.validation import validate
from provision.model.catalog import load_catalog
from tests.conftest import PROFILES

FIXTURE = Path(__file__).parent / "fixtures" / "lust-result.json"
# The figures: where the agent reports each (burnin/suites/gpu.py, gpu_copies.py, gpu_tools.py).
FIGURES = {
    "per_gpu.*.tflops": "tflops",
    "per_gpu.*.mem_gbs": "mem_gbs",
    "copies.hosts.*.h2d_gbs": "h2d_gbs",
    "copies.hosts.*.d2h_gbs": "d2h_gbs",
    "copies.peers.*.gbs": "gbs",
    "nccl.busbw_gbs": "busbw_gbs",
    "per_gpu.*.sustained_power_w": "sustained_power_w",
}


def measured() -> dict[str, Any]:
    """The committed run's GPU figures, with the all-reduce's (the fixture's plan ran none)."""
    doc = json.loads(FIXTURE.read_text())
    m: dict[str, Any] = next(s for s in doc["suites"] if s["suite"] == "gpu")["measurements"]
    m["nccl"] = {
        "installed": True,
        "complete": True,
        "validated": True,
        "error": None,
        "busbw_gbs": 40.2,
        "avg_busbw_gbs": 20.1,
        "wrong": 0,
        "gpus": 4,
    }
    return m


def scaled(m: dict[str, Any], factor: float) -> dict[str, Any]:
    """Every figure the issue names, times `factor` (nothing else changes)."""
    out = copy.deepcopy(m)
    for g in out["per_gpu"]:
        for key in ("tflops", "mem_gbs", "sustained_power_w"):
            g[key] = round(g[key] * factor, 3)
    for h in out["copies"]["hosts"]:
        h["h2d_gbs"], h["d2h_gbs"] = round(h["h2d_gbs"] * factor, 3), round(h["d2h_gbs"] * factor, 3)
    for p in out["copies"]["peers"]:
        p["gbs"] = round(p["gbs"] * factor, 3)
    out["nccl"]["busbw_gbs"] = round(out["nccl"]["busbw_gbs"] * factor, 3)
    return out


def suite(m: dict[str, Any]) -> SuiteResult:
    return SuiteResult(suite="gpu", verdict=Verdict.PASS, started_at=0, ended_at=1, measurements=m)


@pytest.mark.parametrize("name", ["circle-2-lust", "circle-6-heresy"])
def test_both_gpu_profiles_hold_every_figure_to_the_golden_capture(name: str) -> None:
    profile = load_catalog(PROFILES).profiles[name]
    floors = {f.measurement: f for f in profile.acceptance.floors if f.suite.value == "gpu"}
    assert set(FIGURES) <= set(floors), set(FIGURES) - set(floors)
    for path in FIGURES:
        f = floors[path]
        assert (f.golden_warn_below_pct, f.golden_fail_below_pct) == (95.0, 90.0), path


@pytest.mark.parametrize(
    ("factor", "verdict"),
    [(1.0, Verdict.PASS), (0.96, Verdict.PASS), (0.93, Verdict.WARN), (0.85, Verdict.FAIL)],
)
def test_each_figure_below_the_golden_median_warns_then_fails(factor: float, verdict: Verdict) -> None:
    profile = load_catalog(PROFILES).profiles["circle-2-lust"]
    golden_figures = measured()
    golden = capture(profile.name, "inferno-host-golden", "run-golden", 0.0, [suite(golden_figures)])
    findings = validate(profile, suites=[suite(scaled(golden_figures, factor))], golden=golden)
    by_floor = {f.measurement: f.check for f in profile.acceptance.floors}
    for path in FIGURES:
        check = f"{by_floor[path]}_vs_golden"
        got = [f for f in findings if f.check == check]
        assert got, f"{path}: no {check} finding"
        # Every part (GPU, host copy, peer pair) against the golden median of its figure.
        assert {f.verdict for f in got} == {verdict}, [(f.component, f.verdict, f.observed) for f in got]
        assert all("of golden inferno-host-golden" in f.expected for f in got)


def test_a_figure_the_golden_host_lacks_is_not_compared_the_others_are() -> None:
    """No golden busbw (its run had no nccl-tests): nothing to compare it with (gpu_nccl_floor still
    judges it against the profile); the other figures are compared as before."""
    profile = load_catalog(PROFILES).profiles["circle-2-lust"]
    golden_figures = measured()
    del golden_figures["nccl"]
    golden = capture(profile.name, "inferno-host-golden", "run-golden", 0.0, [suite(golden_figures)])
    findings = validate(profile, suites=[suite(measured())], golden=golden)
    assert not [f for f in findings if f.check == "gpu_nccl_busbw_vs_golden"]
    assert [f.verdict for f in findings if f.check == "gpu_compute_vs_golden"] == [Verdict.PASS] * 4
