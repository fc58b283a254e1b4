"""The pure parts of the PDU support: the site file's `pdus:` block and its lint, the MIB families'
parsers on captured walks (failure values included), the PDU findings on a run's power samples,
and the PDU series merged into the burn-in's telemetry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from burnin.schema import Verdict
from provision.acceptance.timeseries import merge_series, parse_telemetry
from provision.acceptance.validation.pdu import AGREE_W, check_pdu, parse_power_log
from provision.lint.catalog import lint_catalog
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.model.pdus import MibFamily, Pdu
from provision.pdu.mibs import COLUMNS, parse_walk
from provision.pdu.snmp import oid_of

# -- the site file ---------------------------------------------------------------------------------

PDU: dict[str, Any] = {
    "name": "inferno-pdu-circle2-1",
    "address": "10.0.9.21",
    "mib": "raritan-pdu2",
    "snmp": {"version": "v2c", "community": "env:PDU_COMMUNITY"},
    "circuit_amps": 30,
    "voltage_v": 208,
}


def with_site_pdus(profiles: Path, pdus: list[dict[str, Any]]) -> None:
    path = profiles / "site.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["pdus"] = pdus
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_rating_is_derived_from_the_circuit_or_given() -> None:
    assert Pdu.model_validate(PDU).rating_w == pytest.approx(4992.0)  # 30 A x 208 V x 80%
    assert Pdu.model_validate(PDU).rating_text == "4992 W (30 A x 208 V x 80%)"
    assert Pdu.model_validate({**PDU, "continuous_w": 4000}).rating_w == 4000.0
    assert Pdu.model_validate(PDU).port == 161


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"snmp": {"version": "v2c", "community": "s3cret-community"}}, "got a literal of 16 characters"),
        ({"snmp": {"version": "v2c", "community": "env:1BAD"}}, "got env:<not a variable name>"),
        (
            {"snmp": {"version": "v3", "user": "ops", "auth_passphrase": "env:K", "priv_protocol": "aes128"}},
            "expected priv_passphrase (env:NAME or file:PATH) for priv_protocol aes128, got none",
        ),
        (
            {"snmp": {"version": "v3", "user": "ops", "community": "env:C"}},
            "expected no community for SNMP v3",
        ),
        ({"snmp": {"version": "v2c"}}, "expected community (env:NAME or file:PATH) for SNMP v2c, got none"),
        ({"snmp": {"version": "v1", "community": "env:C"}}, "'v2c' or 'v3'"),
        ({"circuit_amps": None}, "expected continuous_w, or circuit_amps and voltage_v"),
        ({"mib": "eaton-epdu"}, "'raritan-pdu2', 'apc-rpdu2', 'servertech-sentry4' or 'entity-sensor'"),
        ({"address": "10.0.9.21; reboot"}, "expected a host name or an IP address"),
        ({"outlets": [{"number": 3, "index": "1.1.x"}]}, "expected an index like 1.1.7, got '1.1.x'"),
    ],
)
def test_bad_pdu_entries_are_refused_with_the_rule(change: dict[str, Any], message: str) -> None:
    doc = {**PDU, **change}
    with pytest.raises(ValueError) as info:
        Pdu.model_validate(doc)
    assert message in str(info.value)


def test_a_literal_secret_in_site_yaml_is_one_bad_input_line_without_the_secret(profiles_copy: Path) -> None:
    with_site_pdus(profiles_copy, [{**PDU, "snmp": {"version": "v2c", "community": "public-rw-9431"}}])
    with pytest.raises(BadInput) as info:
        load_catalog(profiles_copy)
    text = str(info.value)
    assert "site.yaml:" in text and "pdus[0].snmp" in text and "never the secret itself" in text
    assert "public-rw-9431" not in text and "\n" not in text


def test_lint_wants_every_hosts_pdu_declared_once_pdus_exist(profiles_copy: Path) -> None:
    before = {(f.code, f.field) for f in lint_catalog(load_catalog(profiles_copy))}
    assert not any(code.startswith("pdu.") for code, _ in before)  # no pdus: block, no rule
    with_site_pdus(profiles_copy, [PDU, {**PDU, "name": "pdu-7"}, {**PDU, "name": "inferno-pdu-circle2-1"}])
    findings = [
        f for f in lint_catalog(load_catalog(profiles_copy)) if f.code.startswith(("pdu.", "taxonomy.pdu"))
    ]
    got = sorted((Path(f.file).name, f.code, f.field, f.message) for f in findings)
    declared = "(inferno-pdu-circle2-1, pdu-7)"
    assert got == [
        (
            "hosts.yaml",
            "pdu.undeclared",
            "hosts[1].pdu",
            f"expected a PDU declared in site.yaml's pdus: {declared}, got 'inferno-pdu-circle6-1'",
        ),
        (
            "hosts.yaml",
            "pdu.undeclared",
            "hosts[2].pdu",
            f"expected a PDU declared in site.yaml's pdus: {declared}, got 'inferno-pdu-circle1-1'",
        ),
        (
            "site.yaml",
            "pdu.duplicate",
            "pdus[2].name",
            "expected a unique PDU name, got 'inferno-pdu-circle2-1' again (first at pdus[0])",
        ),
        ("site.yaml", "taxonomy.pdu", "pdus[1].name", "expected inferno-pdu-circle<n>-<k>, got 'pdu-7'"),
    ]
    assert all(f.line > 1 for f in findings)


# -- the MIB parsers on captured walks -------------------------------------------------------------


def cols(family: MibFamily, rows: dict[str, dict[str, Any]]) -> dict[str, dict[tuple[int, ...], Any]]:
    return {name: {oid_of(k): v for k, v in rows.get(name, {}).items()} for name in COLUMNS[family]}


def test_raritan_digits_per_sensor_and_a_missing_scale_is_no_value() -> None:
    walk = cols(
        MibFamily.raritan_pdu2,
        {
            # pduId.outletId.sensorType; a second PDU of the daisy chain (pduId 2) is not this one.
            "outlet_value": {"1.4.1": 2417, "1.4.5": 503, "1.5.5": 77, "2.4.5": 999},
            "outlet_digits": {"1.4.1": 3, "1.4.5": 0, "2.4.5": 0},
            "inlet_value": {"1.1.5": 48210, "1.1.1": 2315},
            "inlet_digits": {"1.1.5": 1, "1.1.1": 2},
        },
    )
    parsed = parse_walk(MibFamily.raritan_pdu2, walk)
    assert [(m.number, m.power_w, m.current_a) for m in parsed.inlets] == [(1, 4821.0, 23.15)]
    assert [(m.number, m.power_w, m.current_a) for m in parsed.outlets] == [
        (4, 503.0, 2.417),
        (5, None, None),
    ]
    assert parsed.notes == ("outlet 5: no decimal digits for sensor type 5",)
    chained = parse_walk(MibFamily.raritan_pdu2, walk, unit=2)
    assert [(m.number, m.power_w) for m in chained.outlets] == [(4, 999.0)]


def test_apc_minus_one_is_not_supported_and_phase_power_is_hundredths_of_kw() -> None:
    walk = cols(
        MibFamily.apc_rpdu2,
        {
            "phase_power": {"1": 123, "2": -1},
            "phase_current": {"1": 59, "2": 60},
            "outlet_power": {"1": 640, "2": -1},
            "outlet_current": {"1": 31, "2": 0},
            "outlet_number": {"1": 1, "2": 2},
        },
    )
    parsed = parse_walk(MibFamily.apc_rpdu2, walk)
    assert [(m.number, m.power_w, m.current_a) for m in parsed.inlets] == [(1, 1230.0, 5.9), (2, None, 6.0)]
    assert [(m.number, m.power_w, m.current_a) for m in parsed.outlets] == [(1, 640.0, 3.1), (2, None, 0.0)]


def test_sentry4_outlets_by_walk_order_unless_mapped() -> None:
    walk = cols(
        MibFamily.servertech_sentry4,
        {
            "cord_power": {"1.1": 3100, "1.2": 2900, "2.1": 50},
            "line_current": {"1.1.1": 1210, "1.1.2": 1477, "1.2.1": 1395},
            "outlet_power": {"1.1.1": 700, "1.2.1": 650, "2.1.1": 50},
            "outlet_current": {"1.1.1": 337, "1.2.1": 313},
        },
    )
    parsed = parse_walk(MibFamily.servertech_sentry4, walk)
    assert [(m.number, m.power_w, m.current_a) for m in parsed.inlets] == [
        (1, 3100.0, 14.77),
        (2, 2900.0, 13.95),
    ]
    assert [(m.number, m.index, m.power_w) for m in parsed.outlets] == [
        (1, "1.1.1", 700.0),
        (2, "1.2.1", 650.0),
    ]
    mapped = parse_walk(MibFamily.servertech_sentry4, walk, outlet_map={17: "1.2.1"})
    assert [(m.number, m.index) for m in mapped.outlets] == [(1, "1.1.1"), (17, "1.2.1")]


def test_entity_sensor_scale_precision_and_status() -> None:
    walk = cols(
        MibFamily.entity_sensor,
        {
            "type": {"1": 6, "2": 5, "3": 6, "4": 6, "5": 8},
            "scale": {"1": 10, "2": 8, "3": 9, "4": 9, "5": 9},
            "precision": {"1": 2, "2": 0, "3": 0, "4": 0, "5": 1},
            "value": {"1": 512, "2": 7350, "3": 410, "4": 90, "5": 250},
            "status": {"1": 1, "2": 1, "3": 2, "4": 1, "5": 1},
            "name": {
                "1": "Inlet 1 Power",
                "2": "Outlet #2 Current",
                "3": "Outlet 2 Power",
                "4": "PSU fan",
                "5": "Inlet 1 Temp",
            },
        },
    )
    parsed = parse_walk(MibFamily.entity_sensor, walk)
    # 512 x 10^3 (kilo) / 10^2 = 5120 W; 7350 mA; an unavailable(2) sensor is no value, not 410 W.
    assert [(m.kind, m.number, m.power_w, m.current_a) for m in parsed.inlets] == [("inlet", 1, 5120.0, None)]
    assert [(m.kind, m.number, m.power_w, m.current_a) for m in parsed.outlets] == [("outlet", 2, None, 7.35)]
    assert parsed.notes == ("sensor 4 ('PSU fan'): no inlet or outlet number in its entPhysicalName",)


# -- the findings on a run's power samples ---------------------------------------------------------

META = {
    "meta": {
        "pdu": "inferno-pdu-circle2-1",
        "outlet": 3,
        "rating_w": 4992.0,
        "rating": "4992 W (30 A x 208 V x 80%)",
    }
}


def power_log(samples: list[dict[str, Any]], meta: dict[str, Any] = META) -> list[str]:
    return [json.dumps(meta)] + [
        json.dumps({"t": 1_700_000_000.0 + 15 * i, **s}) for i, s in enumerate(samples)
    ]


def by_check(findings: list[Any]) -> dict[str, Any]:
    return {f.check: f for f in findings}


def test_a_wrong_outlet_map_is_a_finding_naming_it() -> None:
    samples = [
        {"v": {"node.power_w": 1200.0 + i, "pdu.outlet_w": 80.0, "pdu.circuit_w": 2790.0}} for i in range(6)
    ]
    found = by_check(check_pdu(parse_power_log(power_log(samples))))
    agree = found["pdu_bmc_agree"]
    assert agree.verdict is Verdict.FAIL and agree.required
    assert agree.component == "inferno-pdu-circle2-1/outlet-3"
    assert agree.observed.startswith(
        "BMC 1202 W, outlet 80 W (gap 1122 W, tolerance 180 W) over 6 paired sample(s)"
    )
    assert (
        "outlet 3 of inferno-pdu-circle2-1 is probably not this host's (a wrong outlet map" in agree.observed
    )
    assert found["pdu_circuit_peak"].verdict is Verdict.PASS


def test_readings_within_tolerance_agree_and_small_loads_use_the_absolute_floor() -> None:
    samples = [
        {"v": {"node.power_w": 1200.0, "pdu.outlet_w": 1050.0}},
        {"v": {"node.power_w": 300.0, "pdu.outlet_w": 180.0}},
    ]
    agree = by_check(check_pdu(parse_power_log(power_log(samples[:1]))))["pdu_bmc_agree"]
    assert agree.verdict is Verdict.PASS  # 150 W gap, 15% of 1200 W is 180 W
    low = by_check(check_pdu(parse_power_log(power_log(samples[1:]))))["pdu_bmc_agree"]
    assert low.verdict is Verdict.PASS and f"tolerance {AGREE_W:.0f} W" in low.observed  # 120 W gap at 300 W


def test_a_circuit_over_its_continuous_rating_fails() -> None:
    samples: list[dict[str, Any]] = [{"v": {"pdu.circuit_w": w}} for w in (4100.0, 5230.0, 4800.0)]
    samples.append({"v": {}, "errors": {"pdu": "no answer within 2 s x 2 tries"}})
    peak = by_check(check_pdu(parse_power_log(power_log(samples))))["pdu_circuit_peak"]
    assert peak.verdict is Verdict.FAIL and peak.required
    assert peak.expected == "<= 4992 W (30 A x 208 V x 80%) on inferno-pdu-circle2-1 (the whole circuit)"
    assert peak.observed == "peak 5230 W (105% of 4992 W) over 3 sample(s); 1 sample(s) without a reading"


def test_no_readings_is_inconclusive_required_when_declared_optional_without_a_pdu() -> None:
    dead = [
        {
            "v": {"node.power_w": 900.0},
            "errors": {"pdu": "SNMP agent 10.0.9.21:161: no answer within 2 s x 2 tries"},
        }
    ]
    found = by_check(check_pdu(parse_power_log(power_log(dead))))
    for check in ("pdu_circuit_peak", "pdu_bmc_agree"):
        assert found[check].verdict is Verdict.INCONCLUSIVE and found[check].required
        assert "no answer within 2 s" in found[check].observed
        assert "0 W" not in found[check].observed
    (absent,) = check_pdu(None)
    assert (absent.check, absent.verdict, absent.required) == (
        "pdu_circuit_peak",
        Verdict.INCONCLUSIVE,
        False,
    )


def test_a_cut_line_is_counted_not_fatal() -> None:
    lines = [*power_log([{"v": {"pdu.circuit_w": 1000.0}}]), '{"t": 17000000', "[]"]
    log = parse_power_log(lines)
    assert (len(log.samples), log.bad_lines) == (1, 2)


def test_pdu_series_merge_into_the_agents_telemetry_for_the_plots() -> None:
    agent = parse_telemetry(
        [json.dumps({"t": 1_700_000_000.0 + i, "v": {"gpu0.power_w": 700.0}}) for i in range(60)]
    )
    power = parse_telemetry(power_log([{"v": {"pdu.outlet_w": 1180.0, "node.power_w": 1212.0}}] * 4), ())
    merge_series(agent, power)
    assert agent.matching("pdu.*") == ["pdu.outlet_w"]
    outlet, node = agent.stats("pdu.outlet_w"), agent.stats("node.power_w")
    assert outlet is not None and (outlet.count, outlet.max) == (4, 1180.0)
    assert node is not None and node.max == 1212.0
    assert agent.end_s == 1_700_000_000.0 + 59  # the power samples (0..45 s) end inside the agent's run
