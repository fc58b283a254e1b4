"""The controller holds the GPU suite's copy measurements to the profile's gpu_floors
(provision/acceptance/validation/gpu_links.py), through validate() as a run is judged: figures per GPU,
bytes changed, the peer matrix against `p2p`, the peer floor. A GPU without figures is inconclusive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from burnin.schema import SuiteResult, Verdict
from provision.acceptance.validation import validate
from provision.model.catalog import load_catalog
from provision.model.gpu_floors import GpuFloors
from provision.model.profile import Profile
from tests.conftest import PROFILES

FIXTURE = Path(__file__).parent / "fixtures" / "lust-result.json"


def lust(**floors: Any) -> Profile:
    profile = load_catalog(PROFILES).profiles["circle-2-lust"]
    assert profile.gpu_floors == GpuFloors()  # the shipped profile: PCIe floors, p2p not yet known
    return profile.model_copy(update={"gpu_floors": GpuFloors(**floors)}) if floors else profile


def gpu_suite(copies: dict[str, Any] | None) -> SuiteResult:
    """The committed run's GPU suite with its copies replaced."""
    doc = json.loads(FIXTURE.read_text())
    measurements = next(s for s in doc["suites"] if s["suite"] == "gpu")["measurements"]
    if copies is None:
        measurements.pop("copies")
    else:
        measurements["copies"] = copies
    return SuiteResult(suite="gpu", verdict=Verdict.PASS, started_at=0, ended_at=1, measurements=measurements)


def committed_copies() -> dict[str, Any]:
    doc = json.loads(FIXTURE.read_text())
    copies: dict[str, Any] = next(s for s in doc["suites"] if s["suite"] == "gpu")["measurements"]["copies"]
    return copies


def verdicts(profile: Profile, suite: SuiteResult, check: str) -> dict[str, Verdict]:
    return {f.component: f.verdict for f in validate(profile, suites=[suite]) if f.check == check}


def test_the_committed_run_reports_every_gpu() -> None:
    got = verdicts(lust(), gpu_suite(committed_copies()), "gpu_copies_reported")
    assert got == {f"gpu:{i}": Verdict.PASS for i in range(4)}
    assert not verdicts(lust(), gpu_suite(committed_copies()), "gpu_p2p_matrix")  # p2p not set: not judged


def test_no_copy_figures_is_inconclusive_never_a_pass() -> None:
    assert set(verdicts(lust(), gpu_suite(None), "gpu_copies_reported").values()) == {Verdict.INCONCLUSIVE}
    copies = committed_copies()
    copies["hosts"] = copies["hosts"][:3]  # one GPU missing
    assert verdicts(lust(), gpu_suite(copies), "gpu_copies_reported")["gpu:3"] is Verdict.INCONCLUSIVE


def test_changed_bytes_fail() -> None:
    copies = committed_copies()
    copies["hosts"][2]["mismatched_bytes"] = 3
    got = verdicts(lust(), gpu_suite(copies), "gpu_copies_reported")
    assert got["gpu:2"] is Verdict.FAIL and got["gpu:1"] is Verdict.PASS


@pytest.mark.parametrize("p2p,verdict", [("absent", Verdict.PASS), ("expected", Verdict.FAIL)])
def test_the_peer_matrix_against_the_profile(p2p: str, verdict: Verdict) -> None:
    got = verdicts(lust(p2p=p2p), gpu_suite(committed_copies()), "gpu_p2p_matrix")  # the run: no peer access
    assert len(got) == 12 and set(got.values()) == {verdict}


def test_peer_floor_and_a_missing_pair() -> None:
    copies = committed_copies()
    for p in copies["peers"]:
        p.update(can_access=True, via="peer", gbs=45.0 if p["src"] else 20.0)
    copies["peers"] = [p for p in copies["peers"] if (p["src"], p["dst"]) != (3, 2)]
    profile = lust(p2p="expected", peer_min_gbs=40)
    floor = verdicts(profile, gpu_suite(copies), "gpu_p2p_floor")
    assert floor["gpu:0->gpu:1"] is Verdict.FAIL and floor["gpu:1->gpu:0"] is Verdict.PASS
    assert verdicts(profile, gpu_suite(copies), "gpu_p2p_matrix")["gpu:3->gpu:2"] is Verdict.INCONCLUSIVE
