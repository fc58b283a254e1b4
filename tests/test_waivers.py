"""`acceptance.not_required` waivers are data with a reason (issue #13, item 3): lint refuses one that
names no real check, and one of an evidence class outside a `lab: true` profile; a waived finding is
shown as "waived: <reason>" in the record, the HTML and the JUnit."""

from __future__ import annotations

import ast
import shutil
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from burnin.schema import Verdict
from provision.acceptance.report.html import _findings_table
from provision.acceptance.report.junit import render_junit
from provision.acceptance.validation.common import finding
from provision.cli import main as cli
from provision.lint.catalog import lint_catalog
from provision.model.catalog import load_catalog
from provision.model.checks import KNOWN_CHECK_PATTERNS, KNOWN_CHECKS, is_known_check
from provision.model.profile import Acceptance, Waiver
from tests.conftest import PROFILES, REPO

LUST = "circle-2-lust.yaml"
LAB = REPO / "profiles-lab"


def _lint(
    tmp_path: Path, waivers: str, capsys: pytest.CaptureFixture[str], lab: bool = False
) -> tuple[int, str]:
    d = tmp_path / "profiles"
    shutil.copytree(PROFILES, d, ignore=shutil.ignore_patterns("*.md"))
    text = (d / LUST).read_text()
    assert "\nacceptance:\n" in text
    text = text.replace("\nacceptance:\n", f"\nacceptance:\n  not_required: {waivers}\n", 1)
    if lab:
        text = text.replace("\ndescription:", "\nlab: true\ndescription:", 1)
    (d / LUST).write_text(text)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--profiles", str(d), "--state", str(tmp_path / "s"), "lint"])
    out, _ = capsys.readouterr()
    return int(exc.value.code or 0), out


def test_a_waiver_of_no_real_check_is_a_lint_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _lint(tmp_path, "[{check: cpu_temperatur, reason: no sensor}]", capsys)
    assert code == 2
    assert (
        ": error: acceptance.not_required[0].check: 'cpu_temperatur' is no check the validation engine "
        "or the agent emits: it would waive nothing"
    ) in out


def test_a_real_check_and_a_profiles_own_floor_may_be_waived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _lint(
        tmp_path,
        "[{check: cpu_temperature, reason: no sensor}, {check: nvme_seq_read, reason: own floor},"
        " {check: firmware_min_bios, reason: pattern},"
        " {check: peak_power, component: node, reason: no meter}]",
        capsys,
    )
    assert code == 0 and "not_required" not in out, out


EVIDENCE = ["suite_completed", "gpu_stress_result", "cpu_stress", "gpu_ecc_uncorrected", "dimm_ecc",
            "gpu_xid", "suite_thread", "suite_ran"]  # fmt: skip


@pytest.mark.parametrize("check", EVIDENCE)
def test_evidence_classes_are_waived_only_in_a_lab_profile(
    check: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _lint(tmp_path, f"[{{check: {check}, reason: why not}}]", capsys)
    assert code == 2
    assert f": error: acceptance.not_required[0].check: {check!r} is evidence (" in out
    assert "that only a profile marked `lab: true` may waive" in out
    code, out = _lint(tmp_path / "lab", f"[{{check: {check}, reason: a VM}}]", capsys, lab=True)
    assert "not_required" not in out, out


def test_the_lab_profile_is_a_lab_and_its_waivers_lint_clean() -> None:
    profile = load_catalog(LAB).profiles["lab-vm"]
    assert profile.lab
    assert {w.check for w in profile.acceptance.not_required} >= {"cpu_temperature", "peak_power", "dimm_ecc"}
    assert all(w.reason for w in profile.acceptance.not_required)
    assert not [f for f in lint_catalog(load_catalog(LAB)) if f.field.startswith("acceptance.not_required")]
    assert not load_catalog(PROFILES).profiles[LUST.removesuffix(".yaml")].lab  # the default


def test_a_waiver_with_a_component_waives_that_component_or_prefix_only() -> None:
    acc = Acceptance(not_required=(Waiver(check="gpu_count", component="gpu", reason="r"),))
    assert acc.waiver("gpu_count", "gpu0") and acc.waiver("gpu_count", "gpu")
    assert acc.waiver("gpu_count", "node") is None and acc.waiver("nic_link", "gpu0") is None
    assert Acceptance(not_required=(Waiver(check="nic_link", reason="r"),)).waiver("nic_link", "eth0")


def _record(waived: str | None, verdict: Verdict) -> dict[str, object]:
    f = finding("cpu_temperature", "node", "<= 90 C", None, verdict, source="telemetry", required=False)
    return {
        "host": "h",
        "run": {"run_id": "r"},
        "verdict": "accepted",
        "profile": "lab-vm",
        "findings": [{**f.__dict__, "verdict": verdict.value, "waived": waived}],
    }


def test_reports_show_a_waived_finding_with_its_reason() -> None:
    record = _record("a TCG guest has no sensor", Verdict.INCONCLUSIVE)
    findings = record["findings"]
    assert isinstance(findings, list)
    html = _findings_table(findings)
    assert "<span class=muted>waived: a TCG guest has no sensor</span>" in html
    assert 'message="inconclusive (waived: a TCG guest has no sensor)' in render_junit(record)
    plain = _record(None, Verdict.INCONCLUSIVE)
    assert "<span class=muted>optional</span>" in _findings_table(plain["findings"])  # type: ignore[arg-type]
    assert 'message="inconclusive (not required)' in render_junit(plain)


def _emitted() -> set[str]:
    """Every check id the engine and the agent make with a literal name: the first argument (or
    `check=`) of each call to a function whose first parameter is `check`."""
    files = [
        p
        for root in ("provision/acceptance", "provision/agent", "provision/flow", "burnin")
        for p in (REPO / root).rglob("*.py")
    ]
    trees = [ast.parse(p.read_text()) for p in files]
    makers = {"Finding"} | {
        n.name
        for t in trees
        for n in ast.walk(t)
        if isinstance(n, ast.FunctionDef) and [a.arg for a in n.args.args if a.arg != "self"][:1] == ["check"]
    }
    names: set[str] = set()
    for t in trees:
        for n in ast.walk(t):
            if not isinstance(n, ast.Call):
                continue
            fn = n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
            if fn not in makers:
                continue
            arg = next((k.value for k in n.keywords if k.arg == "check"), n.args[0] if n.args else None)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
        for n in ast.walk(t):  # `for key, check in (("...", "nvme_..."), ...)`
            targets = n.target.elts if isinstance(n, ast.For) and isinstance(n.target, ast.Tuple) else []
            names_it = "check" in [getattr(e, "id", "") for e in targets]
            if isinstance(n, ast.For) and names_it and isinstance(n.iter, ast.Tuple):
                for el in n.iter.elts:
                    if isinstance(el, ast.Tuple) and isinstance(el.elts[-1], ast.Constant):
                        names.add(str(el.elts[-1].value))
    return names


def test_every_check_the_engine_and_the_agent_emit_is_known() -> None:
    emitted = _emitted()
    assert len(emitted) > 80 and {"suite_completed", "cpu_temperature", "nvme_warning_temp_time"} <= emitted
    assert not sorted(c for c in emitted if not is_known_check(c))
    # and the list holds nothing the sources never make
    stale = sorted(c for c in KNOWN_CHECKS if c not in emitted)
    assert not stale, stale
    assert all(not any(fnmatchcase(c, p) for p in KNOWN_CHECK_PATTERNS) for c in ("cpu_temperatur", "edac"))
