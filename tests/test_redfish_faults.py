"""Faults between us and a real BMC: a proxy in front of sushy-emulator answers 5xx, resets
connections, answers 409 and replies slowly; scripted rules imitate vendor quirks. And a BMC that is
down or hangs must give exit 3 with the URL, within the bound the retry policy sets."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sushy import exceptions as sx

from provision.bmc.power import CONFLICT_RETRY_S, PowerAction, PowerClock, set_power
from provision.bmc.redfish import Credentials, connect, is_transient
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from tests.support.faultproxy import FaultPlan, Reply, fault_proxy, redfish_error
from tests.support.mockup import build_tree, write_tree
from tests.support.procs import free_port
from tests.support.redfish_rig import SYSTEM_PATH, cli, emulator, set_bmc, static

HOST = "inferno-host-master"


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:secret")


def test_power_and_boot_complete_with_30_percent_of_calls_failing(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = FaultPlan(fail_rate=0.3, seed=7)
    with emulator(tmp_path / "emu") as emu, fault_proxy(emu.port, plan) as proxy:
        port = proxy.server_address[1]
        # 8 attempts: a call fails for good only if 8 draws in a row fail (0.3**8 ~ 7e-5).
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{port}", attempts=8, retry_delay_s=0.02,
                read_timeout_s=5, power_timeout_s=60)  # fmt: skip
        base = ["--profiles", str(profiles_copy)]
        rc, out, err = cli([*base, "boot", HOST, "pxe", "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out)["target"] == "Pxe"
        rc, out, err = cli([*base, "power", HOST, "cycle", "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out)["state"] == "On"
        assert json.loads(out)["bmc_retries"] > 0  # it did not get through by luck
        rc, out, err = cli([*base, "power", HOST, "off", "--force", "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out)["state"] == "Off"
    # Every kind of fault really happened, and a fair share of all calls failed.
    assert set(plan.counts) == {"5xx", "reset", "409", "slow"}
    failed = sum(v for k, v in plan.counts.items() if k != "slow")
    assert failed >= len(proxy.requests) * 0.1


def test_bmc_down_exits_3_naming_the_url_within_its_retry_bound(
    profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens: connection refused
    set_bmc(
        profiles_copy,
        HOST,
        url=f"http://127.0.0.1:{port}",
        attempts=3,
        retry_delay_s=0.2,
        connect_timeout_s=1,
    )
    start = time.monotonic()
    rc, out, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    elapsed = time.monotonic() - start
    assert rc == 3
    assert f"http://127.0.0.1:{port}/redfish/v1/: connect failed after 3 attempt(s)" in err
    assert "Traceback" not in err and out == ""
    assert elapsed < 10  # 3 refused attempts + 0.6 s of back-off; sushy's defaults would take ~27 s


def test_bmc_that_accepts_but_never_answers_times_out_with_exit_3(
    profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever reads
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{port}", attempts=2, retry_delay_s=0.1,
                read_timeout_s=0.5, connect_timeout_s=0.5)  # fmt: skip
        start = time.monotonic()
        rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
        elapsed = time.monotonic() - start
    assert rc == 3 and f"127.0.0.1:{port}/redfish/v1/: connect failed after 2 attempt(s): timed out" in err
    assert elapsed < 10


def _patch_rule(kind: str, times: int) -> Any:
    """Answer the first `times` matching requests with the quirk, then let them through."""
    left = {"n": times}

    def rule(method: str, path: str, body: dict[str, Any] | None) -> Reply | dict[str, Any] | None:
        if left["n"] <= 0:
            return None
        if kind == "dell_409" and method == "POST" and "Reset" in path and body == {"ResetType": "On"}:
            left["n"] -= 1
            return Reply(
                409, redfish_error("Base.1.8.ActionParameterValueConflict", "Power On not allowed yet")
            )
        if kind == "hpe_post" and method == "PATCH" and path == SYSTEM_PATH:
            left["n"] -= 1
            return Reply(400, redfish_error("iLO.2.14.UnableToModifyDuringSystemPOST", "System in POST"))
        if kind == "smc_mode" and method == "PATCH" and path == SYSTEM_PATH and body:
            left["n"] -= 1  # the target is taken, the mode falls back to Legacy (Supermicro, Ironic 2008712)
            return {"Boot": {**body["Boot"], "BootSourceOverrideMode": "Legacy"}}
        if (
            kind == "unchanged_enabled"
            and method == "PATCH"
            and body
            and "BootSourceOverrideEnabled" in body["Boot"]
        ):
            left["n"] -= 1  # rejects resending an unchanged Enabled (Ironic story 2007355)
            return Reply(400, redfish_error("Base.1.8.PropertyValueNotInList", "BootSourceOverrideEnabled"))
        return None

    return rule


@pytest.mark.parametrize(
    ("kind", "times", "argv", "expect"),
    [
        ("dell_409", 2, ["power", HOST, "on"], {"state": "On"}),
        ("hpe_post", 2, ["boot", HOST, "pxe"], {"target": "Pxe", "attempts": 1}),  # retried inside one PATCH
        ("smc_mode", 1, ["boot", HOST, "pxe"], {"target": "Pxe", "mode": "UEFI", "attempts": 2}),
        ("smc_mode", 2, ["boot", HOST, "pxe"], {"target": "Pxe", "mode": "UEFI", "attempts": 3}),
        (
            "unchanged_enabled",
            1,
            ["boot", HOST, "pxe", "--persistent"],
            {"enabled": "Continuous", "attempts": 2},
        ),
    ],
)
def test_vendor_quirks_are_retried_to_success(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    times: int,
    argv: list[str],
    expect: dict[str, Any],
) -> None:
    plan = FaultPlan(rules=[_patch_rule(kind, times)])
    with emulator(tmp_path / "emu") as emu, fault_proxy(emu.port, plan) as proxy:
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{proxy.server_address[1]}", retry_delay_s=0.05)
        rc, out, err = cli(["--profiles", str(profiles_copy), *argv, "--json"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert {k: data[k] for k in expect} == expect
    if kind == "unchanged_enabled":
        assert any("unchanged BootSourceOverrideEnabled" in n for n in data["notes"])


# --persistent: the emulator already reports Continuous, so a busy answer must not be mistaken for
# "refuses an unchanged BootSourceOverrideEnabled" and silently worked around.
@pytest.mark.parametrize("extra", [[], ["--persistent"]])
def test_a_quirk_that_never_clears_fails_with_the_bmc_message(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    plan = FaultPlan(rules=[_patch_rule("hpe_post", 100)])
    with emulator(tmp_path / "emu") as emu, fault_proxy(emu.port, plan) as proxy:
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{proxy.server_address[1]}", retry_delay_s=0.01)
        rc, _, err = cli(["--profiles", str(profiles_copy), "boot", HOST, "pxe", *extra], capsys)
        patches = [r for r in proxy.requests if r[0] == "PATCH"]
    assert rc == 3
    assert f"{SYSTEM_PATH}: set boot override target=Pxe" in err
    assert "failed after 4 attempt(s): HTTP 400" in err and "System in POST" in err
    assert len(patches) == 4  # one call's retries, no quirk work-around on top


def test_power_on_answered_409_while_already_on_is_success(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first read says Off (stale), the BMC refuses On with 409 because it is on: that is success."""
    reads = {"n": 0}

    def stale_first_read(method: str, path: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        if method == "GET" and path == SYSTEM_PATH:
            reads["n"] += 1
            if reads["n"] == 1:
                return {**doc, "PowerState": "Off"}
        return None

    def refuse_on(method: str, path: str, body: dict[str, Any] | None) -> Reply | None:
        if method == "POST" and "Reset" in path:
            return Reply(
                409, redfish_error("Base.1.8.PropertyValueConflict", "The host is already powered on")
            )
        return None

    plan = FaultPlan(rules=[refuse_on], rewrite=stale_first_read)
    with emulator(tmp_path / "emu", power_state="On") as emu, fault_proxy(emu.port, plan) as proxy:
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{proxy.server_address[1]}", retry_delay_s=0.01)
        rc, out, err = cli(["--profiles", str(profiles_copy), "power", HOST, "on", "--json"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert (data["previous"], data["state"], data["changed"]) == ("Off", "On", False)


def test_dell_409_outliving_the_call_retries_is_retried_until_the_power_deadline(tmp_path: Path) -> None:
    """iDRAC refuses On for up to a minute after a power-off: longer than one call's retries."""
    plan = FaultPlan(rules=[_patch_rule("dell_409", 5)])
    with emulator(tmp_path / "emu") as emu, fault_proxy(emu.port, plan) as proxy:
        bmc = Bmc(url=f"http://127.0.0.1:{proxy.server_address[1]}", credentials="env:X", attempts=2,
                  retry_delay_s=0.01)  # fmt: skip
        slept: list[float] = []

        def sleep(s: float) -> None:  # the 10 s conflict back-off, compressed; power polling kept real
            slept.append(s)
            time.sleep(min(s, 0.3))

        with connect(bmc, credentials=Credentials("admin", "secret")) as client:
            result = set_power(client, PowerAction.on, 60, PowerClock(sleep=sleep))
    assert (result.state, result.steps) == ("On", ["On"])
    assert slept.count(CONFLICT_RETRY_S) == 2  # 5 refusals: 2 calls x 2 attempts, then through


def test_power_that_does_not_settle_in_time_is_exit_3_with_the_last_state(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The change stays pending for a minute, so the 0.2 s wait fails however loaded the machine is.
    with emulator(tmp_path / "emu", power_delay_s=60) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.05, power_timeout_s=0.2)
        rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "on"], capsys)
    assert rc == 3
    assert f"{emu.url}{SYSTEM_PATH}: power did not reach On within 0.2 s (last reported: Off)" in err


def _response(status: int, body: dict[str, Any] | None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode() if body is not None else b"oops"
    return resp


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (503, redfish_error("Base.1.8.ServiceTemporarilyUnavailable", "busy"), True),
        (500, None, True),
        (409, redfish_error("Base.1.8.ActionParameterValueConflict", "try later"), True),
        (400, redfish_error("iLO.2.14.UnableToModifyDuringSystemPOST", "in POST"), True),
        (400, redfish_error("IDRAC.2.8.SYS518", "job in progress"), True),
        (400, redfish_error("Base.1.8.PropertyValueNotInList", "bad value"), False),
        (401, None, False),
        (404, None, False),
    ],
)
def test_which_bmc_answers_are_worth_a_retry(
    status: int, body: dict[str, Any] | None, transient: bool
) -> None:
    with pytest.raises(sx.HTTPError) as info:  # sushy's own mapping from response to exception class
        sx.raise_for_response("PATCH", "http://bmc/redfish/v1/Systems/1", _response(status, body))
    assert is_transient(info.value) is transient


def test_inspection_through_30_percent_faults_reads_the_same_inventory(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")
    host = "inferno-host-compute-1"
    catalog = load_catalog(profiles_copy)
    entry = catalog.host(host)
    tree = write_tree(build_tree(catalog.profile_of(entry), entry), tmp_path / "mockup")
    base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
    plan = FaultPlan(fail_rate=0.3, seed=11)
    with static(tree, tmp_path / "static.log") as svc, fault_proxy(svc.port, plan) as proxy:
        set_bmc(profiles_copy, host, url=svc.url, retry_delay_s=0.02)
        rc, direct, err = cli([*base, "inspect", host, "--json"], capsys)
        assert rc == 0, err
        set_bmc(profiles_copy, host, url=f"http://127.0.0.1:{proxy.server_address[1]}", attempts=8,
                retry_delay_s=0.02, read_timeout_s=5)  # fmt: skip
        rc, faulty, err = cli([*base, "inspect", host, "--json"], capsys)
        assert rc == 0, err
    assert (json.loads(direct)["bmc_retries"], json.loads(faulty)["bmc_retries"] > 0) == (0, True)
    clean, noisy = json.loads(direct)["inventory"], json.loads(faulty)["inventory"]
    clean.pop("collected_at")
    noisy.pop("collected_at")
    assert noisy == clean
    assert sum(plan.counts.values()) >= 20  # it really went through a storm


def test_a_bmc_that_silently_reverts_mode_and_once_is_caught_by_the_read_back(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As captured on an AMI-based Supermicro (bmclib's fixtures): the PATCH answers success, yet a
    GET shows only the target taken; BootSourceOverrideMode went back to Legacy, Enabled to Disabled."""

    def revert(method: str, path: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        if method == "GET" and path == SYSTEM_PATH and "Boot" in doc:
            boot = {
                **doc["Boot"],
                "BootSourceOverrideMode": "Legacy",
                "BootSourceOverrideEnabled": "Disabled",
            }
            return {**doc, "Boot": boot}
        return None

    plan = FaultPlan(rewrite=revert)
    with emulator(tmp_path / "emu") as emu, fault_proxy(emu.port, plan) as proxy:
        set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{proxy.server_address[1]}", retry_delay_s=0.01)
        rc, out, err = cli(["--profiles", str(profiles_copy), "boot", HOST, "pxe", "--restart"], capsys)
        patches = [r for r in proxy.requests if r == ("PATCH", SYSTEM_PATH)]
        resets = [r for r in proxy.requests if r[0] == "POST" and "Reset" in r[1]]
    assert rc == 3 and out == ""
    assert "did not read back as set after 3 attempts" in err
    assert "mode: expected UEFI, got Legacy; enabled: expected Once, got Disabled" in err
    assert "set the mode in the BIOS settings" in err
    assert len(patches) == 3  # the full request was resent, a bounded number of times
    assert resets == []  # and the host was never powered on with the wrong override
