"""Reports of the compute host's run: JSON against the shipped schema, JUnit parsed with the right
counts, the HTML rendered by a real headless Chromium (verdict and plots present, no console
message), a 72-hour 1 Hz series kept small, and the run diff."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from provision.cli.main import cli
from provision.model.errors import ProvisionError
from tests.conftest import PROFILES
from tests.support.bundle import FIXTURES
from tests.support.chromium import png_size, render
from tests.support.longrun import write_long_run

SCHEMA = json.loads(
    (files("provision.acceptance.report") / "schemas" / "acceptance-report-v1.json").read_text()
)


def run_dir(tmp: Path, edit: Any = None) -> Path:
    d = tmp / "run"
    d.mkdir(parents=True, exist_ok=True)
    result = json.loads((FIXTURES / "lust-result.json").read_text())
    if edit is not None:
        edit(result)
    (d / "result.json").write_text(json.dumps(result))
    shutil.copy(FIXTURES / "lust-telemetry.jsonl", d / "telemetry.jsonl")
    shutil.copy(FIXTURES / "lust-redfish-inventory.json", d / "inventory-redfish.json")
    return d


def provision(*args: str, state: Path | None = None) -> tuple[int, str, str]:
    """Exit codes as the CLI maps them: a verdict other than accepted is exit 1 (VerdictFailed)."""
    runner = CliRunner()
    argv = ["--profiles", str(PROFILES), *(["--state", str(state)] if state else []), *args]
    res = runner.invoke(cli, argv, catch_exceptions=True)
    if isinstance(res.exception, ProvisionError):
        return res.exception.exit_code, res.stdout, res.stderr + str(res.exception)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def broken(result: dict[str, Any]) -> None:
    """One failure (a GPU short of memory) and one required inconclusive (STREAM missing)."""
    result["inventory"]["gpus"][3]["memory_mib"] = 46068
    result["suites"][1]["measurements"].pop("triad_gbs")


def test_json_record_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    code, out, _ = provision("report", "--run-dir", str(run_dir(tmp_path, broken)), "--format", "json")
    assert code == 1  # rejected: the record is written all the same
    record = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert record["verdict"] == "rejected"
    assert record["findings"][0]["verdict"] == "fail"  # failures first
    serials = {g["serial"] for g in record["inventory"]["in_os"]["gpus"]}
    assert serials == {"1652824012340", "1652824012341", "1652824012342", "1652824012343"}
    raw = {r["path"]: r for r in record["raw"]}
    assert set(raw) == {"result.json", "telemetry.jsonl", "inventory-redfish.json"}
    assert raw["telemetry.jsonl"]["size_bytes"] == (FIXTURES / "lust-telemetry.jsonl").stat().st_size


def test_a_reinstall_record_validates(tmp_path: Path) -> None:
    _, out, _ = provision("report", "--run-dir", str(run_dir(tmp_path)), "--format", "json")
    record = json.loads(out)
    record["reinstall"] = {
        "previous_run": "r0",
        "previous_verdict": "accepted",
        "previous_report": "r0/x",
        "changes": ["gpu 1652824012342 -> 1652824099999"],
        "weighted_suites": ["gpu"],
    }
    jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
    record["reinstall"]["weighted_suites"] = [3]
    with pytest.raises(jsonschema.ValidationError, match="3 is not of type 'string'"):
        jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_a_record_missing_its_verdict(tmp_path: Path) -> None:
    _, out, _ = provision("report", "--run-dir", str(run_dir(tmp_path)), "--format", "json")
    record = json.loads(out)
    del record["verdict"]
    with pytest.raises(jsonschema.ValidationError, match="'verdict' is a required property"):
        jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_junit_has_one_testcase_per_finding_with_the_documented_mapping(tmp_path: Path) -> None:
    d = run_dir(tmp_path, broken)
    _, out, _ = provision("report", "--run-dir", str(d), "--format", "json")
    findings = json.loads(out)["findings"]
    out_file = tmp_path / "junit.xml"
    code, _, err = provision("report", "--run-dir", str(d), "--format", "junit", "-o", str(out_file))
    assert code == 1 and "wrote" in err
    root = ET.parse(out_file).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(findings) == int(root.get("tests", "-1"))
    want = Counter(
        "failures"
        if f["verdict"] == "fail"
        else ("errors" if f["required"] else "skipped")
        if f["verdict"] == "inconclusive"
        else "ok"
        for f in findings
    )
    assert int(root.get("failures", "-1")) == want["failures"] == len(root.findall(".//failure")) >= 1
    assert int(root.get("errors", "-1")) == want["errors"] == len(root.findall(".//error")) >= 1
    assert int(root.get("skipped", "-1")) == want["skipped"] == len(root.findall(".//skipped"))
    failure = root.find(".//failure")
    assert failure is not None and "46068 MiB" in failure.get("message", "")
    warn = root.find(".//testcase[@name='nic_link:nic:ib0']/system-out")
    assert warn is not None and (warn.text or "").startswith("WARN ")


def test_html_renders_in_chromium_with_verdict_and_plots(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, _, _ = provision("report", "--run-dir", str(run_dir(tmp_path, broken)), "-o", str(page))
    assert code == 1
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    shot = tmp_path / "report.png"
    out = render(page, shot)
    assert out.console == []
    assert 'class="verdict rejected"' in out.dom and "REJECTED" in out.dom
    attention = out.dom[out.dom.index('id="attention"') : out.dom.index('id="inventory"')]
    assert "gpu_memory_mib" in attention and "46068 MiB" in attention and "stream_triad" in attention
    assert out.dom.index('id="verdict"') < out.dom.index('id="attention"') < out.dom.index('id="telemetry"')
    for kind in ("temperatures", "clocks", "power", "utilization"):
        assert f'data-kind="{kind}"' in out.dom
    assert out.dom.count("<polygon") >= 20 and 'data-series="gpu3.temp_c"' in out.dom
    assert "Sign-off" in out.dom and "1652824012343" in out.dom
    # the GPU short of memory is marked in the inventory (in-OS table, and the BMC's in its <details>)
    assert out.dom.count('<tr class="bad">') == 2
    width, height = png_size(shot)
    assert (width, height) == (1100, 2400) and shot.stat().st_size > 50_000


def test_console_errors_are_caught(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
        '<script>console.error("boom from the page")</script></body></html>'
    )
    out = render(page)
    assert any("boom from the page" in m for m in out.console)


@pytest.fixture(scope="module")
def long_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp("long")
    samples = write_long_run(d / "run")
    page = d / "report.html"
    code, _, _ = provision("report", "--run-dir", str(d / "run"), "-o", str(page))
    assert code == 0
    return page, samples


def test_72_hour_series_stays_small_and_renders(long_report: tuple[Path, int]) -> None:
    page, samples = long_report
    assert samples == 72 * 3600 + 1
    size = page.stat().st_size
    telemetry = (page.parent / "run" / "telemetry.jsonl").stat().st_size
    assert size < 1_000_000 and telemetry > 100 * size  # 24 series x 259,201 samples -> under 1 MB
    out = render(page)
    assert out.console == []
    assert 'class="verdict accepted"' in out.dom and "259201 samples over 72 h" in out.dom
    assert out.dom.count("<polyline") == 24
    # the rare 9 °C spikes of gpu3 survive the reduction: its band reaches 89.9 °C
    assert "max 89.9 °C" in out.dom


def test_diff_names_swapped_parts_firmware_and_performance(tmp_path: Path) -> None:
    a = run_dir(tmp_path / "a")

    def swapped(result: dict[str, Any]) -> None:
        inv = result["inventory"]
        inv["gpus"][2]["serial"] = "1652824099999"
        inv["dimms"][5]["serial"] = "80CE01FFFF"
        inv["drives"][3]["firmware"] = "E2MU210"
        inv["system"]["bios_version"] = "3.2"
        inv["nics"][1]["mac"] = "3c:ec:ef:20:01:99"
        result["run_id"] = "20251201T090000Z-compute-1"
        result["suites"][1]["measurements"]["triad_gbs"] = 850.0

    b = run_dir(tmp_path / "b", swapped)
    code, out, _ = provision("report", "--diff", str(a), str(b))
    assert code == 0, out
    for line in (
        "gpu removed  1652824012342 (was in GPU 2)",
        "gpu added    1652824099999 (in GPU 2)",
        "dimm removed  80CE012A45 (was in P0 CHANNEL F)",
        "dimm added    80CE01FFFF (in P0 CHANNEL F)",
        "nic removed  3c:ec:ef:20:01:11 (was in eth1)",
        "firmware drive 2451E8A101 firmware: E2MU200 -> E2MU210",
        "firmware system bios: 3.1 -> 3.2",
        "perf memory.triad_gbs: 925.3 -> 850 (-8.1%)",
    ):
        assert line in out, out
    code, out, _ = provision("report", "--diff", str(a), str(b), "--format", "json")
    d = json.loads(out)
    assert (
        d["a"]["run_id"] == "20251128T120000Z-compute-1" and d["b"]["run_id"] == "20251201T090000Z-compute-1"
    )


def test_diff_of_a_run_with_itself_says_nothing_changed(tmp_path: Path) -> None:
    a = run_dir(tmp_path)
    _, out, _ = provision("report", "--diff", str(a), str(a))
    assert "no change in parts, firmware, performance or verdicts" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report"], "report: expected HOST, --local or --run-dir DIR, got none of them"),
        (["report", "inferno-host-compute-1"], "expected a state store with this host's runs, got none"),
        (["report", "inferno-host-compute-1", "--local"], "expected one of them, got several"),
        (["report", "--run-dir", "/nonexistent/run"], "/nonexistent/run: expected a run directory"),
        (["report", "nosuchhost"], "host: expected one of"),
        (["report", "--local"], "expected a state store with this host's runs, got none"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    from provision.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            main(["--profiles", str(PROFILES), "--state", str(tmp_path), *args])
    assert exit_.value.code == 2
    text = err.getvalue()
    assert message in text and text.count("\n") == 1 and "Traceback" not in text


def test_result_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    d = run_dir(tmp_path, lambda r: r.update(schema_version=9))
    from provision.acceptance.runfiles import load_run_dir
    from provision.model.errors import BadInput

    with pytest.raises(BadInput, match=r"result.json: schema_version: expected 1, got 9"):
        load_run_dir(d)


def test_unparsable_telemetry_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    with (d / "telemetry.jsonl").open("a") as f:
        f.write('{"t": 1764331421, "v": {"gpu0.temp_c": 4\n')  # the agent was killed mid-write
    _, out, _ = provision("report", "--run-dir", str(d), "--format", "json")
    assert json.loads(out)["telemetry"]["bad_lines"] == 1


def stored_run(state: Path, edit: Any = None) -> str:
    from provision.store.state import StateStore

    src = run_dir(state.parent / f"src-{len(list(state.parent.glob('src-*')))}", edit)
    with StateStore.open(state) as store:
        run = store.create_run("inferno-host-compute-1", "host")
        for name in ("result.json", "inventory-redfish.json", "telemetry.jsonl"):
            store.put_document(run.id, name, (src / name).read_bytes())
        return run.id


def test_report_from_the_state_store_keeps_the_record_and_the_host_state(tmp_path: Path) -> None:
    from provision.store.state import HostState, StateStore

    state = tmp_path / "state"
    first = stored_run(state)
    code, out, _ = provision("report", "inferno-host-compute-1", "--format", "json", state=state)
    assert code == 0 and json.loads(out)["verdict"] == "accepted"
    with StateStore.open(state) as store:
        assert store.get_host_state("inferno-host-compute-1") is HostState.accepted
        kept = json.loads(store.get_document(first, "acceptance.json"))
        assert kept["run"]["run_id"] == "20251128T120000Z-compute-1" and kept["verdict"] == "accepted"
    second = stored_run(state, broken)
    code, out, _ = provision("report", "inferno-host-compute-1", "--format", "junit", state=state)
    assert code == 1 and 'failures="1"' in out
    with StateStore.open(state) as store:
        assert store.get_host_state("inferno-host-compute-1") is HostState.rejected
    code, out, _ = provision("report", "inferno-host-compute-1", "--diff", first, second, state=state)
    assert "check gpu_memory_mib:gpu:3 (serial 1652824012343): pass -> fail" in out, out


def test_evidence_changed_after_collection_is_refused(tmp_path: Path) -> None:
    from provision.cli.main import main

    state = tmp_path / "state"
    run = stored_run(state)
    with (state / "runs" / run / "telemetry.jsonl").open("a") as f:
        f.write('{"t": 1764331500, "v": {"cpu0.temp_c": 20}}\n')
    with pytest.raises(SystemExit) as exit_:
        main(["--profiles", str(PROFILES), "--state", str(state), "report", "inferno-host-compute-1"])
    assert exit_.value.code == 3


def test_report_local_reads_the_last_local_run_as_burnin_local_stores_it(tmp_path: Path) -> None:
    """What `provision burnin --local` leaves: a run of host "local" in the store with result.json,
    and the agent's own directory (runs/<id>/agent/) holding telemetry.jsonl in seconds since start."""
    from provision.store.state import StateStore

    state = tmp_path / "state"
    result = json.loads((FIXTURES / "lust-result.json").read_text())
    result["host"] = "local"
    with StateStore.open(state) as store:
        run = store.create_run("local", "burnin")
        ref = store.put_document(run.id, "result.json", result)
        store.put_document(run.id, "inventory.json", result["inventory"])
    agent = ref.path.parent / "agent"
    agent.mkdir()
    shutil.copy(FIXTURES / "lust-telemetry.jsonl", agent / "telemetry.jsonl")
    code, out, _ = provision("report", "--local", "--format", "json", state=state)
    record = json.loads(out)
    # no profile, no contract: health and integrity are judged, but it is never an acceptance
    assert (code, record["verdict"]) == (1, "inconclusive"), record["reason"]
    assert "contract_profile:node" in {f["id"] for f in record["findings"]}
    assert record["host"] == "local" and record["profile"] is None and record["run"]["kind"] == "local"
    jsonschema.validate(record, SCHEMA, cls=jsonschema.Draft202012Validator)
    phases = {p["name"]: p for p in record["phases"]}
    assert phases["gpu"]["start"] == result["started_at"] + 36600  # relative t moved onto the run's clock
    assert "agent/telemetry.jsonl" in {r["path"] for r in record["raw"]}
    code, out, _ = provision(
        "report", "--local", "--profile", "circle-2-lust", "--format", "json", state=state
    )
    record = json.loads(out)
    assert (code, record["profile"], record["verdict"]) == (1, "circle-2-lust", "inconclusive")
    # the contract is met; only the BMC's view is missing (a local run has no pre-OS inventory)
    blocking = [f["id"] for f in record["findings"] if f["verdict"] == "inconclusive" and f["required"]]
    assert blocking == ["pre_os_crosscheck:bmc"], blocking


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        (
            lambda d: (d / "result.json").write_text("{not json"),
            [],
            "result.json: expected JSON, got Expecting",
        ),
        (
            lambda d: (d / "result.json").write_text(
                (d / "result.json")
                .read_text()
                .replace('"telemetry": "telemetry.jsonl"', '"telemetry": "../x"')
            ),
            [],
            "telemetry: expected a path inside the run directory, got '../x'",
        ),
        (
            lambda d: (d / "result.json").write_text("[1, 2]"),
            [],
            "expected a burn-in result object, got list",
        ),
        (
            lambda d: None,
            ["--profile", "circle-9"],
            "--profile: expected one of circle-1-limbo, circle-2-lust",
        ),
    ],
    ids=["not-json", "telemetry-outside", "not-an-object", "unknown-profile"],
)
def test_bad_run_files_are_one_line(edit: Any, args: list[str], message: str, tmp_path: Path) -> None:
    import contextlib
    import io

    from provision.cli.main import main

    d = run_dir(tmp_path)
    edit(d)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(err):
        main(["--profiles", str(PROFILES), "--state", str(tmp_path), "report", "--run-dir", str(d), *args])
    assert exit_.value.code == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1, err.getvalue()
