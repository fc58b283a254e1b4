"""The acceptance contract lives in the profile (issue #13, item 1): a run is held to the contract of
its host's profile (`burnin.acceptance`: suites, times, evidence options, coverage) whatever plan it
ran, and a run short of it is never `accepted`: its verdict says "not an acceptance run: <what is
missing>". Seen where the user sees it: `provision report --run-dir`, its JSON record and exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import PROFILES
from tests.support.bundle import FIXTURES
from tests.test_acceptance_contract import by_id, judge
from tests.test_handoff_apply import provision


def suite_of(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["suites"] if s["suite"] == name)


def quick_run(tmp: Path, plan_name: str = "quick") -> tuple[int, dict[str, Any]]:
    """The committed quick-plan run of the same good host, judged with `report --run-dir`."""
    d = tmp / "quick"
    d.mkdir()
    result = json.loads((FIXTURES / "lust-quick-result.json").read_text())
    result["plan"]["name"] = plan_name
    (d / "result.json").write_text(json.dumps(result))
    shutil.copy(FIXTURES / "lust-quick-telemetry.jsonl", d / "telemetry.jsonl")
    shutil.copy(FIXTURES / "lust-redfish-inventory.json", d / "inventory-redfish.json")
    args = ["report", "--run-dir", str(d), "--profile", "circle-2-lust", "--format", "json"]
    res = provision(*args, state=tmp / "state")
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("plan_name", ["quick", "acceptance"])
def test_a_quick_run_of_a_good_host_is_not_an_acceptance_run(tmp_path: Path, plan_name: str) -> None:
    """Renaming the plan changes nothing: the contract is the profile's, not the run's."""
    code, record = quick_run(tmp_path, plan_name)
    assert (code, record["verdict"]) == (1, "inconclusive")
    assert record["counts"]["fail"] == 0  # the hardware is good: nothing failed
    reason = record["reason"]
    assert reason.startswith("Not an acceptance run: "), reason
    assert "suite:cpu planned 60 s of 14400 s; ran 60 s of 14400 s" in reason
    assert "suite:soak not run" in reason and "suite:nvme" in reason and "without destructive" in reason
    found = by_id(record)
    assert found["contract_suite:suite:gpu"]["observed"].endswith("dcgm_level 0 below 1")
    assert found["contract_memory_coverage:memory"]["observed"] == "tested_mib/ram_mib not reported"
    assert found["contract_soak_together:soak"]["verdict"] == "inconclusive"


def test_the_acceptance_run_meets_the_contract_and_says_so(tmp_path: Path) -> None:
    res, record = judge(tmp_path)
    assert (res.exit_code, record["verdict"]) == (0, "accepted"), record["reason"]
    assert "the profile's contract was met" in record["reason"]
    contract = {k: f for k, f in by_id(record).items() if k.startswith("contract_")}
    assert {f["verdict"] for f in contract.values()} == {"pass"}
    assert contract["contract_memory_coverage:memory"]["observed"].startswith("84.3% (651,030 of 772,212 MiB")
    assert contract["contract_soak_together:soak"]["observed"] == "479.8 min"
    assert len([k for k in contract if k.startswith("contract_scratch_written:nvme:")]) == 4


def _set(path: str, value: Any) -> Any:
    """An edit of the committed acceptance run: `suite.key.key...` set to value (None removes it)."""

    def edit(result: dict[str, Any]) -> None:
        name, *keys = path.split(".")
        node: Any = suite_of(result, name)
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is None:
            node.pop(keys[-1], None) if isinstance(node, dict) else node.pop(int(keys[-1]))
        elif isinstance(node, list):
            node[int(keys[-1])] = value
        else:
            node[keys[-1]] = value

    return edit


def _cut_short(result: dict[str, Any]) -> None:
    gpu = suite_of(result, "gpu")
    gpu["ended_at"] = gpu["started_at"] + 600  # stopped after 10 minutes, no error said


def _no_soak(result: dict[str, Any]) -> None:
    result["suites"] = [s for s in result["suites"] if s["suite"] != "soak"]
    result["plan"]["suites"] = [s for s in result["plan"]["suites"] if s["suite"] != "soak"]


def _read_only_nvme(result: dict[str, Any]) -> None:
    next(s for s in result["plan"]["suites"] if s["suite"] == "nvme")["options"].pop("destructive")


def _short_plan(result: dict[str, Any]) -> None:
    next(s for s in result["plan"]["suites"] if s["suite"] == "cpu")["duration_s"] = 3600


MEM, GPU_MEM = "contract_memory_coverage:memory", "contract_gpu_memory_coverage"
SHORT = [
    ("memory share", _set("memory.measurements.tested_mib", 300_000), MEM, "38.8%"),
    ("memory unreported", _set("memory.measurements.tested_mib", None), MEM, "not reported"),
    ("gpu memory", _set("gpu.measurements.per_gpu.2.tested_mib", 40_000), f"{GPU_MEM}:gpu:2", "40.9%"),
    ("a gpu unreported", _set("gpu.measurements.per_gpu.3", None), f"{GPU_MEM}:gpus", "3 of 4 GPUs reported"),
    ("drive written", _set("nvme.measurements.per_drive.nvme:2451E8A101.written_bytes", 10**12),
     "contract_scratch_written:nvme:2451E8A101", "26.0%"),
    ("a drive unreported", _set("nvme.measurements.per_drive.nvme:2451E8A103", None),
     "contract_scratch_read:nvme", "3 of 4 scratch drives reported"),
    ("soak together", _set("soak.measurements.together_s", 3600.0), "contract_soak_together:soak",
     "60.0 min"),
    ("no soak", _no_soak, "contract_suite:suite:soak", "not run"),
    ("read-only nvme", _read_only_nvme, "contract_suite:suite:nvme", "without destructive"),
    ("cut short", _cut_short, "contract_suite:suite:gpu", "ran 600 s of 14400 s"),
    ("short plan", _short_plan, "contract_suite:suite:cpu", "planned 3600 s of 14400 s"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "fid", "observed"), SHORT, ids=[c[0] for c in SHORT])
def test_a_run_short_of_any_part_of_the_contract_is_not_accepted(
    tmp_path: Path, case: str, edit: Any, fid: str, observed: str
) -> None:
    res, record = judge(tmp_path, edit)
    f = by_id(record).get(fid)
    assert f is not None, sorted(k for k in by_id(record) if k.startswith("contract_"))
    assert (f["verdict"], f["required"], observed in f["observed"]) == ("inconclusive", True, True), f
    assert (res.exit_code, record["verdict"]) == (1, "inconclusive"), record["reason"]
    assert record["reason"].startswith("Not an acceptance run: ") and observed in record["reason"]


def test_a_rejected_run_short_of_the_contract_says_both(tmp_path: Path) -> None:
    def slow_and_short(result: dict[str, Any]) -> None:
        _no_soak(result)
        suite_of(result, "memory")["measurements"]["triad_gbs"] = 100.0  # far below the floor

    res, record = judge(tmp_path, slow_and_short)
    assert (res.exit_code, record["verdict"]) == (1, "rejected")
    assert "failed; also not an acceptance run: suite:soak not run" in record["reason"]


def test_no_waiver_lifts_the_contract(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    path = profiles / "circle-2-lust.yaml"
    text = path.read_text().replace(
        "\nacceptance:\n", "\nacceptance:\n  not_required: [{check: contract_suite, reason: impatient}]\n", 1
    )
    path.write_text(text)
    with pytest.raises(BadInput, match="'contract_suite' is the acceptance contract, which no waiver lifts"):
        load_catalog(profiles)


LINT = [
    ("memory floor, no memory suite", "      - {suite: memory, duration_s: 14400}\n", "",
     "burnin.acceptance.coverage.memory_tested_pct: expected a floor the plan can reach, "
     "got no memory suite in the acceptance plan"),
    ("written without destructive", ", options: {destructive: true}}", "}",
     "expected the nvme suite with options: {destructive: true}"),
    ("soak together longer than the soak", "soak_together_min: 450", "soak_together_min: 500",
     "expected at most the soak's own 480 min, got 500 min"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "old", "new", "message"), LINT, ids=[c[0] for c in LINT])
def test_lint_refuses_a_contract_the_plan_cannot_meet(
    tmp_path: Path, case: str, old: str, new: str, message: str
) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    path = profiles / "circle-2-lust.yaml"
    text = path.read_text()
    acceptance_at = text.index("  acceptance:\n")  # the acceptance plan, not the quick one
    path.write_text(text[:acceptance_at] + text[acceptance_at:].replace(old, new, 1))
    res = provision("--profiles", str(profiles), "lint", state=tmp_path / "state")
    assert res.exit_code == 2 and message in res.output, res.output


def test_the_soak_caps_the_cpus_only_as_far_as_the_feed_requires() -> None:
    """2.7 kW of burn within a 4,992 W feed: full load together. On a 20 A feed (3,328 W) the same box
    keeps its GPUs and the rest (1,900 W) and gives the CPUs what is left: 1,428 of 800 W: still 100%;
    on a 12 A feed (1,997 W) 97 W is left for 800 W of CPUs: 12%; on 10 A nothing is left: lint error."""
    lust = load_catalog(PROFILES).profiles["circle-2-lust"]
    assert lust.soak_cpu_load_pct == 100
    for amps, pct in ((20, 100), (12, 12), (10, 0)):
        power = lust.power.model_copy(update={"circuit_amps": amps})
        assert lust.model_copy(update={"power": power}).soak_cpu_load_pct == pct, amps
