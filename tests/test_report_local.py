"""The report of a real `provision burnin --local` run of this machine: the agent runs its suites for
real (stress-ng, the triad kernel, memtester, fio on the boot disk...), then `provision report --local`
renders it; Chromium shows the verdict and the plots, the JSON validates, the JUnit parses.

The plan is the quick plan's shape with shorter durations (tests/fixtures/local-short-plan.json):
the quick plan itself takes over a minute here, past this file's share of `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import PROFILES, REPO
from tests.support.chromium import png_size, render

PLAN = Path(__file__).resolve().parent / "fixtures" / "local-short-plan.json"
SCHEMA = json.loads(
    (files("provision.acceptance.report") / "schemas" / "acceptance-report-v1.json").read_text()
)


def provision(state: Path, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", str(state), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("local") / "state"
    ran = provision(state, "burnin", "--local", "--plan", str(PLAN), "--json")
    # The verdict of this VM (no NVMe, no GPU, no EDAC) is the agent's business; a crash is not.
    assert ran.returncode in (0, 1), ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    return state


def test_report_of_a_real_local_run_renders_in_chromium(local_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    ran = provision(local_run, "report", "--local", "-o", str(page))
    assert ran.returncode in (0, 1) and "Traceback" not in ran.stderr, ran.stderr  # 1: not accepted
    shot = tmp_path / "report.png"
    out = render(page, shot, window="1100,1600")
    assert out.console == []
    assert 'id="verdict"' in out.dom and any(
        text in out.dom for text in ("ACCEPTED", "REJECTED", "INCONCLUSIVE — not accepted")
    )
    assert 'data-kind="clocks"' in out.dom and 'data-kind="utilization"' in out.dom  # cpufreq, /proc/stat
    assert 'data-series="cpu.mhz_avg"' in out.dom and "<polyline" in out.dom
    assert png_size(shot) == (1100, 1600)


def test_json_and_junit_of_a_real_local_run(local_run: Path, tmp_path: Path) -> None:
    ran = provision(local_run, "report", "--local", "--format", "json")
    record = json.loads(ran.stdout)
    assert ran.returncode == (0 if record["verdict"] == "accepted" else 1), ran.stderr
    jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert record["host"] == "local" and record["run"]["kind"] == "local"
    assert [p["name"] for p in record["phases"]][:2] == ["inventory", "cpu"]
    assert record["telemetry"]["samples"] > 5
    assert {"result.json", "agent/telemetry.jsonl"} <= {r["path"] for r in record["raw"]}
    ran = provision(local_run, "report", "--local", "--format", "junit")
    root = ET.fromstring(ran.stdout)
    assert int(root.get("tests", "0")) == len(record["findings"]) == len(root.findall(".//testcase"))
    assert int(root.get("failures", "-1")) == record["counts"]["fail"]
