"""The burn-in's power sampler against real parts: snmpsim serving a Raritan walk and sushy-static
serving the host's BMC (Redfish PowerControl). The samples land in power.jsonl and are judged:
the BMC says ~1.2 kW while the mapped outlet says 80 W (a wrong outlet map), the circuit above its
rating, a PDU that hangs (errors, never 0 W), a resumed controller keeping the samples taken, and
the report judging and plotting the samples of a recorded run."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from burnin.schema import Verdict
from provision.acceptance.runfiles import read_power
from provision.acceptance.validation.pdu import check_pdu, parse_power_log
from provision.cli.main import cli
from provision.model.catalog import load_catalog
from provision.model.hosts import Host
from provision.model.pdus import Pdu
from provision.pdu.sampler import bmc_power_w, burnin_power
from tests.conftest import PROFILES
from tests.support.bundle import FIXTURES
from tests.support.mockup import Style, build_tree, write_tree
from tests.support.redfish_rig import Service, static
from tests.support.snmpsim import Agent, silent_agent, snmpsim

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)
BMC_W = 1212.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as a:
        yield a


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("bmc")
    tree: dict[str, Any] = copy.deepcopy(build_tree(PROFILE, HOST))
    tree["/redfish/v1/Chassis/1/Power"]["PowerControl"][0]["PowerConsumedWatts"] = BMC_W
    with static(write_tree(tree, work / "mockup"), work / "static.log") as svc:
        yield svc


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")


def site_pdu(port: int, **fields: Any) -> Pdu:
    doc: dict[str, Any] = {
        "name": HOST.pdu,
        "address": "127.0.0.1",
        "port": port,
        "mib": "raritan-pdu2",
        "snmp": {"version": "v2c", "community": "env:TEST_PDU_COMMUNITY"},
        "continuous_w": 2500,
        "timeout_s": 0.3,
        "retries": 0,
    }
    doc.update(fields)
    return Pdu.model_validate(doc)


def host_on(bmc: Service, outlet: int) -> Host:
    return HOST.model_copy(
        update={
            "pdu_outlet": outlet,
            "bmc": HOST.bmc.model_copy(update={"url": bmc.url, "retry_delay_s": 0.05}),
        }
    )


def sample(pdu: Pdu, host: Host, times: int, existing: bytes = b"") -> bytes:
    saved: list[bytes] = [existing]
    with burnin_power((pdu,), host, lambda: existing, saved.append) as sampler:
        assert sampler is not None
        for _ in range(times):
            sampler.sample()
    return saved[-1]


def verdicts(blob: bytes) -> dict[str, Any]:
    return {f.check: f for f in check_pdu(parse_power_log(blob.decode().splitlines()))}


def test_a_wrong_outlet_map_and_a_circuit_over_its_rating_are_findings(agent: Agent, bmc: Service) -> None:
    blob = sample(site_pdu(agent.port), host_on(bmc, 3), times=2)
    lines = [json.loads(line) for line in blob.decode().splitlines()]
    assert lines[0]["meta"]["outlet"] == 3 and lines[0]["meta"]["rating_w"] == 2500.0
    assert [line["v"] for line in lines[1:]] == [
        {"node.power_w": BMC_W, "pdu.circuit_w": 2790.0, "pdu.outlet_a": 0.412, "pdu.outlet_w": 80.0}
    ] * 2
    found = verdicts(blob)
    assert found["pdu_bmc_agree"].verdict is Verdict.FAIL
    assert "BMC 1212 W, outlet 80 W" in found["pdu_bmc_agree"].observed
    assert "wrong outlet map" in found["pdu_bmc_agree"].observed
    assert found["pdu_circuit_peak"].verdict is Verdict.FAIL
    assert found["pdu_circuit_peak"].observed.startswith("peak 2790 W (112% of 2500 W)")


def test_the_right_outlet_agrees_and_a_resumed_sampler_keeps_its_samples(agent: Agent, bmc: Service) -> None:
    pdu = site_pdu(agent.port, continuous_w=4992)
    first = sample(pdu, host_on(bmc, 1), times=1)
    resumed = sample(pdu, host_on(bmc, 1), times=1, existing=first)
    lines = resumed.decode().splitlines()
    assert lines[:2] == first.decode().splitlines() and len(lines) == 3
    assert sum(1 for line in lines if '"meta"' in line) == 1
    found = verdicts(resumed)
    assert found["pdu_bmc_agree"].verdict is Verdict.PASS  # 1212 W against 1180 W
    assert found["pdu_circuit_peak"].verdict is Verdict.PASS


def test_a_pdu_that_hangs_during_burn_in_leaves_errors_never_zero_watts(bmc: Service) -> None:
    with silent_agent() as port:
        blob = sample(site_pdu(port), host_on(bmc, 1), times=1)
    line = json.loads(blob.decode().splitlines()[1])
    assert line["v"] == {"node.power_w": BMC_W}
    assert line["errors"]["pdu"].startswith(f"SNMP agent 127.0.0.1:{port}: no answer within 0.3 s x 1 tries")
    found = verdicts(blob)
    assert {c: (f.verdict, f.required) for c, f in found.items()} == {
        "pdu_circuit_peak": (Verdict.INCONCLUSIVE, True),
        "pdu_bmc_agree": (Verdict.INCONCLUSIVE, True),
    }


def test_a_host_whose_pdu_the_site_does_not_declare_is_not_sampled(agent: Agent, bmc: Service) -> None:
    with burnin_power(
        (site_pdu(agent.port, name="inferno-pdu-circle2-9"),), host_on(bmc, 1), bytes, print
    ) as sampler:
        assert sampler is None


def test_the_run_files_carry_the_samples_and_their_series(tmp_path: Path) -> None:
    path = tmp_path / "power.jsonl"
    assert read_power(path, None) == (None, None)
    path.write_text(
        json.dumps({"meta": {"pdu": HOST.pdu, "outlet": 1, "rating_w": 4992.0}})
        + "\n"
        + json.dumps({"t": 1_700_000_000.0, "v": {"pdu.outlet_w": 1180.0, "node.power_w": BMC_W}})
        + "\n"
    )
    log, tel = read_power(path, None)
    assert log is not None and log.meta["outlet"] == 1 and len(log.samples) == 1
    assert (
        tel is not None
        and tel.matching("*power_w") == ["node.power_w"]
        and tel.matching("pdu.*") == ["pdu.outlet_w"]
    )


def test_the_report_judges_and_plots_the_pdu_series(tmp_path: Path) -> None:
    """`provision report --run-dir` over a recorded run plus the controller's power.jsonl: the findings
    and the record carry the PDU, the record still validates, the HTML's power chart shows it."""
    run = tmp_path / "run"
    run.mkdir()
    for src, dst in (
        ("lust-result.json", "result.json"),
        ("lust-telemetry.jsonl", "telemetry.jsonl"),
        ("lust-redfish-inventory.json", "inventory-redfish.json"),
    ):
        (run / dst).write_bytes((FIXTURES / src).read_bytes())
    started = json.loads((run / "result.json").read_text())["started_at"]
    meta = {"pdu": HOST.pdu, "outlet": 1, "rating_w": 4992.0, "rating": "4992 W (30 A x 208 V x 80%)"}
    lines = [json.dumps({"meta": meta})] + [
        json.dumps(
            {
                "t": started + 600 + 15 * i,
                "v": {"pdu.outlet_w": 80.0, "pdu.circuit_w": 2790.0, "node.power_w": 2650.0},
            }
        )
        for i in range(40)
    ]
    (run / "power.jsonl").write_text("\n".join(lines) + "\n")

    base = ["--profiles", str(PROFILES), "report", "--run-dir", str(run)]
    out = CliRunner().invoke(cli, [*base, "--format", "json"])
    record = json.loads(out.stdout)
    schema = json.loads(
        (files("provision.acceptance.report") / "schemas" / "acceptance-report-v1.json").read_text()
    )
    jsonschema.validate(record, schema, cls=jsonschema.Draft202012Validator)
    found = {f["check"]: f for f in record["findings"]}
    assert (
        found["pdu_bmc_agree"]["verdict"] == "fail"
        and "wrong outlet map" in found["pdu_bmc_agree"]["observed"]
    )
    assert found["pdu_circuit_peak"]["verdict"] == "pass"
    assert "(BMC)" in found["peak_power"]["observed"]  # the chassis reading, no longer an estimate
    assert "power.jsonl" in {r["path"] for r in record["raw"]}  # digested as evidence
    series = {s["name"]: s for s in record["telemetry"]["series"]}
    assert (series["pdu.outlet_w"]["count"], series["pdu.outlet_w"]["max"]) == (40, 80.0)
    page = tmp_path / "report.html"
    CliRunner().invoke(cli, [*base, "-o", str(page)])
    html = page.read_text()
    assert "pdu.outlet_w" in html and "node.power_w" in html


@pytest.mark.parametrize("style", [Style.supermicro, Style.dell, Style.dmtf, Style.hpe])
def test_the_bmc_chassis_reading_in_each_vendor_layout(style: Style) -> None:
    """Legacy Power/PowerControl (supermicro, dell, hpe) or PowerSubsystem's PSU input (dmtf): the
    mockup trees of each layout, read through the same GET the sampler uses."""
    tree: dict[str, Any] = copy.deepcopy(build_tree(PROFILE, HOST, style))
    power = [doc for path, doc in tree.items() if path.endswith("/Power")]
    metrics = [doc for path, doc in tree.items() if path.endswith("/Metrics") and "InputPowerWatts" in doc]
    for doc in power:
        doc["PowerControl"][0]["PowerConsumedWatts"] = BMC_W
    for doc in metrics:
        doc["InputPowerWatts"]["Reading"] = BMC_W / len(metrics)
    assert bool(power) != bool(metrics)  # each layout has one of the two
    assert bmc_power_w(tree.get) == BMC_W
    for doc in [*power, *metrics]:
        doc.clear()
    assert bmc_power_w(tree.get) is None
