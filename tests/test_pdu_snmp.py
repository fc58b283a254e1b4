"""PDU readings over SNMP against snmpsim serving recorded walks of each MIB family (tests/data/snmp):
the vendors' scaling, v3 credentials from env:, a PDU that hangs or is not of its family
(inconclusive, never 0 W), and `provision pdu` with the hosts mapped to outlets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.cli.main import main
from provision.model.pdus import Pdu
from provision.pdu.readings import pdu_load
from tests.support.snmpsim import V3_AUTH_KEY, V3_PRIV_KEY, V3_USER, Agent, silent_agent, snmpsim


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as a:
        yield a


def site_pdu(port: int, **fields: Any) -> Pdu:
    doc: dict[str, Any] = {
        "name": "inferno-pdu-circle2-1",
        "address": "127.0.0.1",
        "port": port,
        "mib": "raritan-pdu2",
        "snmp": {"version": "v2c", "community": "env:TEST_PDU_COMMUNITY"},
        "circuit_amps": 30,
        "voltage_v": 208,
        "timeout_s": 1.0,
        "retries": 1,
    }
    doc.update(fields)
    return Pdu.model_validate(doc)


# (family, community, inlet W, inlet A, outlet 1 W, outlet 1 A, outlet 3 W): the walks hold each
# vendor's fixed-point integers (Raritan 13540 with 3 decimal digits, APC 279 hundredths of kW and
# 135 tenths of A, Sentry4 1354 hundredths of A, ENTITY-SENSOR 11800 at precision 1 and mA at milli).
FAMILIES = [
    ("raritan-pdu2", "raritan", 2790.0, 13.54, 1180.0, 5.712, 80.0),
    ("apc-rpdu2", "apc", 2790.0, 13.5, 1180.0, 5.7, 80.0),
    ("servertech-sentry4", "sentry4", 2790.0, 13.54, 1180.0, 5.71, 80.0),
    ("entity-sensor", "entity", 2790.0, 13.54, 1180.0, 5.712, 80.0),
]


@pytest.mark.parametrize(("mib", "community", "inlet_w", "inlet_a", "out1_w", "out1_a", "out3_w"), FAMILIES)
def test_each_family_reads_watts_and_amps_with_its_scaling(
    agent: Agent,
    monkeypatch: pytest.MonkeyPatch,
    mib: str,
    community: str,
    inlet_w: float,
    inlet_a: float,
    out1_w: float,
    out1_a: float,
    out3_w: float,
) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", community)
    reading = pdu_load(site_pdu(agent.port, mib=mib))
    assert reading.inconclusive is None
    assert [(m.number, m.power_w, m.current_a) for m in reading.inlets] == [(1, inlet_w, inlet_a)]
    assert len(reading.outlets) == 8
    one, three = reading.outlet(1), reading.outlet(3)
    assert one is not None and (one.power_w, one.current_a) == (out1_w, out1_a)
    assert three is not None and three.power_w == out3_w
    assert reading.load_w == inlet_w
    assert reading.outlets_w == 2790.0  # the outlets add up to the inlet in every recorded walk


def test_v3_credentials_from_env_and_a_wrong_key_is_inconclusive(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PDU_AUTH", V3_AUTH_KEY)
    monkeypatch.setenv("TEST_PDU_PRIV", V3_PRIV_KEY)
    v3 = {
        "version": "v3",
        "user": V3_USER,
        "auth_protocol": "sha256",
        "auth_passphrase": "env:TEST_PDU_AUTH",
        "priv_protocol": "aes128",
        "priv_passphrase": "env:TEST_PDU_PRIV",
        "context": "sentry4",
    }
    reading = pdu_load(site_pdu(agent.port, mib="servertech-sentry4", snmp=v3))
    assert reading.inconclusive is None and reading.load_w == 2790.0

    monkeypatch.setenv("TEST_PDU_AUTH", "not-the-key-1")
    wrong = pdu_load(site_pdu(agent.port, mib="servertech-sentry4", snmp=v3))
    assert wrong.inconclusive is not None and "digest" in wrong.inconclusive.lower()
    assert "not-the-key-1" not in wrong.inconclusive
    assert wrong.load_w is None and wrong.outlets == ()


def test_a_pdu_that_never_answers_is_inconclusive_never_zero_watts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    with silent_agent() as port:
        reading = pdu_load(site_pdu(port, timeout_s=0.3, retries=1))
    assert reading.inconclusive == (
        f"SNMP agent 127.0.0.1:{port}: no answer within 0.3 s x 2 tries "
        "(address, port, community or v3 user wrong, or the PDU is down)"
    )
    assert (reading.load_w, reading.inlet_w, reading.outlets_w, reading.outlets) == (None, None, None, ())


def test_an_address_that_does_not_resolve_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    reading = pdu_load(site_pdu(161, address="pdu-c2-1.invalid"))
    assert reading.inconclusive is not None
    assert reading.inconclusive.startswith("SNMP agent pdu-c2-1.invalid:161: ")
    assert reading.load_w is None


def test_the_wrong_family_answers_no_such_object_and_is_inconclusive(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    reading = pdu_load(site_pdu(agent.port, mib="apc-rpdu2"))
    assert reading.inconclusive is not None
    assert "noSuchObject" in reading.inconclusive and "not a apc-rpdu2 PDU" in reading.inconclusive
    assert reading.load_w is None


def test_an_unset_community_variable_is_bad_input_naming_the_field(agent: Agent) -> None:
    from provision.model.errors import BadInput

    with pytest.raises(
        BadInput,
        match=r"pdus\[inferno-pdu-circle2-1\]\.snmp\.community: expected environment variable TEST_PDU_UNSET",
    ):
        pdu_load(site_pdu(agent.port, snmp={"version": "v2c", "community": "env:TEST_PDU_UNSET"}))


# -- provision pdu ---------------------------------------------------------------------------------


def declare(profiles: Path, port: int, **fields: Any) -> None:
    path = profiles / "site.yaml"
    doc = yaml.safe_load(path.read_text())
    entry = {
        "name": "inferno-pdu-circle2-1",
        "address": "127.0.0.1",
        "port": port,
        "mib": "raritan-pdu2",
        "snmp": {"version": "v2c", "community": "env:TEST_PDU_COMMUNITY"},
        "circuit_amps": 30,
        "voltage_v": 208,
        "timeout_s": 0.5,
        "retries": 0,
    }
    entry.update(fields)
    doc["pdus"] = [entry]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def test_provision_pdu_json_maps_outlets_to_hosts(
    agent: Agent,
    profiles_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    declare(profiles_copy, agent.port)
    base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
    rc, out, err = cli([*base, "pdu", "inferno-pdu-circle2-1", "--json"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["load_w"] == 2790.0 and data["rating_w"] == pytest.approx(4992.0)
    first = data["outlets"][0]
    assert (first["number"], first["host"], first["power_w"], first["current_a"]) == (
        1,
        "inferno-host-compute-1",
        1180.0,
        5.712,
    )
    assert [m["host"] for m in data["outlets"][1:]] == [None] * 7
    assert data["inlets"][0]["power_w"] == 2790.0

    rc, out, _ = cli([*base, "pdu", "inferno-pdu-circle2-1"], capsys)
    assert rc == 0
    assert out.splitlines()[0].startswith("inferno-pdu-circle2-1 (raritan-pdu2, 127.0.0.1:")
    assert "load 2790 W of 4992 W (30 A x 208 V x 80%) (56%)" in out.splitlines()[0]
    assert any(
        "outlet 1" in line and "inferno-host-compute-1" in line and "1180 W" in line
        for line in out.splitlines()
    )


def test_provision_pdu_errors_are_one_line_and_non_zero(
    agent: Agent,
    profiles_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
    rc, out, err = cli([*base, "pdu", "inferno-pdu-circle2-1"], capsys)
    assert rc == 2 and out == ""
    assert "pdus: expected one of none (site.yaml has no pdus:), got 'inferno-pdu-circle2-1'" in err

    monkeypatch.setenv("TEST_PDU_COMMUNITY", "wrong-community-7c1")  # snmpsim ignores it: a timeout
    declare(profiles_copy, agent.port)
    rc, out, err = cli([*base, "pdu", "inferno-pdu-circle2-1", "--json"], capsys)
    assert rc == 3 and out == ""
    assert (
        "inferno-pdu-circle2-1: inconclusive: SNMP agent 127.0.0.1:" in err
        and "no answer within 0.5 s" in err
    )
    assert "wrong-community-7c1" not in err
    assert "Traceback" not in err
