"""`provision bios --apply` against a BIOS whose Settings object carries an ETag and advertises
`@Redfish.SettingsApplyTime` (as iLO and iDRAC do): sushy-emulator's own BIOS routes, with the
test extension enforcing If-Match (428 without one, 412 with a stale one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.bios_emulator import bios_emulator
from tests.support.redfish_rig import NODE, cli, set_bmc
from tests.test_bios_redfish import HOST, run_json, set_bios


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:Canary-pw-5d1e")


@pytest.mark.parametrize(("etags", "stale", "patches"), [("header", 0, 1), ("odata", 1, 2)])
def test_apply_sends_if_match_and_the_apply_time_and_rereads_once_on_412(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    etags: str,
    stale: int,
    patches: int,
) -> None:
    set_bios(profiles_copy, {"attributes": {"ProcTurboMode": "Disabled"}})
    with bios_emulator(tmp_path, NODE, etags=etags, stale_patches=stale) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        rc, shown, _ = run_json([*base, "bios", HOST], capsys)
        assert rc == 1 and shown["bios"]["etag"] is True and shown["bios"]["apply_times"] == ["OnReset"]
        rc, applied, err = run_json([*base, "bios", HOST, "--apply"], capsys)
        assert rc == 0, err
        assert applied["changes"] == {"ProcTurboMode": "Disabled"}
        assert [f["verdict"] for f in applied["findings"]] == ["pass"]
    state = json.loads((tmp_path / "bios.json").read_text())
    # The PATCH the emulator took came with the current ETag (it refuses any other) and the apply time.
    assert state["_last_patch"] == {
        "Attributes": {"ProcTurboMode": "Disabled"},
        "@Redfish.SettingsApplyTime": {"ApplyTime": "OnReset"},
    }
    assert state[NODE.uuid]["current"]["ProcTurboMode"] == "Disabled"
    assert emu.log.read_text().count("PATCH /redfish/v1/Systems/") == patches


def test_a_second_412_fails_clearly_and_never_patches_without_if_match(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bios(profiles_copy, {"attributes": {"ProcTurboMode": "Disabled"}})
    with bios_emulator(tmp_path, NODE, etags="header", stale_patches=2) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        rc, _, err = cli([*base, "bios", HOST, "--apply"], capsys)
    assert rc == 3, err
    assert "refused it twice as changed meanwhile (HTTP 412 Precondition Failed on If-Match" in err
    assert "another client is writing the BIOS settings" in err
    log = emu.log.read_text()
    # Two tries, each with an ETag: no third one without If-Match (sushy's own fallback), no reset.
    assert log.count("PATCH /redfish/v1/Systems/") == 2 and "ComputerSystem.Reset" not in log
    state = json.loads((tmp_path / "bios.json").read_text())
    assert "_last_patch" not in state and state[NODE.uuid]["current"]["ProcTurboMode"] == "Enabled"
