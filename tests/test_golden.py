"""`provision profile capture`: a known-good host's figures become the class's golden reference,
and later runs are held to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_handoff_apply import HOST, provision, store_run


def capture_after(state: Path, tmp: Path, profiles: Path, broken: bool = False) -> Any:
    store_run(state, tmp, broken=broken)
    return provision("--profiles", str(profiles), "profile", "capture", HOST, "--json", state=state)


def test_capture_writes_the_golden_file_beside_the_profiles(tmp_path: Path, profiles_copy: Path) -> None:
    res = capture_after(tmp_path / "state", tmp_path, profiles_copy)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    path = profiles_copy / "golden" / "circle-2-lust.json"
    assert out["path"] == str(path) and out["replaced"] is False and out["figures"] > 10
    golden = json.loads(path.read_text())
    assert golden["host"] == HOST and golden["measurements"]["memory"]["triad_gbs"] == 925.3
    assert golden["measurements"]["gpu"]["per_gpu.2.tflops"] == 100.6


def test_later_runs_are_held_to_the_golden_figures(tmp_path: Path, profiles_copy: Path) -> None:
    state = tmp_path / "state"
    assert capture_after(state, tmp_path, profiles_copy).exit_code == 0
    run = tmp_path / "later"
    run.mkdir()
    result = json.loads((Path(__file__).parent / "fixtures" / "lust-result.json").read_text())
    result["suites"][1]["measurements"]["triad_gbs"] = 800.0  # 69.3% of peak, 86% of golden
    (run / "result.json").write_text(json.dumps(result))
    res = provision(
        "--profiles", str(profiles_copy), "report", "--run-dir", str(run), "--format", "json", state=state
    )
    findings = {f["id"]: f for f in json.loads(res.stdout)["findings"]}
    golden = findings["stream_triad_vs_golden:node"]
    assert golden["verdict"] == "fail" and "86.5% of golden" in golden["observed"]
    assert HOST in golden["expected"]
    assert json.loads(res.stdout)["run"]["golden_run"] == "20251128T120000Z-compute-1"


def test_a_rejected_run_is_not_a_reference(tmp_path: Path, profiles_copy: Path) -> None:
    res = capture_after(tmp_path / "state", tmp_path, profiles_copy, broken=True)
    assert res.exit_code == 1
    assert "is rejected: only an accepted run is a reference" in res.output
    assert not (profiles_copy / "golden").exists()


def test_a_golden_file_of_another_profile_is_refused(tmp_path: Path, profiles_copy: Path) -> None:
    (profiles_copy / "golden").mkdir()
    (profiles_copy / "golden" / "circle-2-lust.json").write_text(
        json.dumps(
            {
                "golden_version": 1,
                "profile": "circle-6-heresy",
                "host": "x",
                "run_id": "r",
                "captured_at": 0,
                "measurements": {},
            }
        )
    )
    run = tmp_path / "later"
    run.mkdir()
    (run / "result.json").write_text((Path(__file__).parent / "fixtures" / "lust-result.json").read_text())
    res = provision("--profiles", str(profiles_copy), "report", "--run-dir", str(run), state=tmp_path)
    assert res.exit_code == 2
    assert "golden/circle-2-lust.json: profile: expected 'circle-2-lust', got 'circle-6-heresy'" in res.output
