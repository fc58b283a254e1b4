"""The `bios` step of `provision host` against sushy-emulator with BIOS state (tests.support.bios_emulator):
it applies, resets and reads back; run again (a resume) it finds nothing to do and resets nothing;
without a `bios:` block it is skipped; a refused name fails the step before anything is sent."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.flow.bios_steps import BiosSteps
from provision.flow.engine import StepCall, StepName
from provision.flow.hostenv import HostEnv, StepContext
from provision.flow.logprogress import PlainProgress
from provision.flow.waits import Cancel, Waiter
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.store.state import StateStore
from tests.support.bios_emulator import bios_emulator
from tests.support.redfish_rig import NODE, set_bmc

HOST = "inferno-host-master"


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:Canary-pw-77aa")


def _step(
    tmp_path: Path, profiles: Path, bios: dict[str, Any] | None
) -> tuple[BiosSteps, StepCall, StateStore, str]:
    path = profiles / "circle-1-limbo.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.pop("bios", None)
    if bios is not None:
        doc["bios"] = bios
    doc.setdefault("timeouts", {}).update({"power_s": 30, "poll_s": 0.5})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    catalog = load_catalog(profiles)
    host = catalog.host(HOST)
    profile = catalog.profile_of(host)
    store = StateStore.open(tmp_path / "state")
    progress = PlainProgress(io.StringIO())
    env = HostEnv(
        store=store,
        host=host,
        profile=profile,
        timeouts=profile.timeouts,
        progress=progress,
        catalog=catalog,
        boot_url="http://127.0.0.1:1",
        netboot_dir=tmp_path / "netboot",
        profiles_dir=profiles,
    )
    run = store.create_run(HOST, "provision")
    call = StepCall(HOST, run.id, StepName.bios, {}, Waiter(HOST, "bios", progress, Cancel()), attempt=1)
    return BiosSteps(StepContext(env, run)), call, store, run.id


def test_bios_step_applies_once_and_a_rerun_changes_nothing(tmp_path: Path, profiles_copy: Path) -> None:
    with bios_emulator(tmp_path / "emu", NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        steps, call, store, run_id = _step(
            tmp_path, profiles_copy, {"attributes": {"ProcTurboMode": "Disabled"}}
        )
        with store:
            first = steps.bios(call)
            assert first.facts == {"bios_changed": ["ProcTurboMode"]}
            assert first.message == "1 BIOS attribute(s) set and read back"
            doc = json.loads(store.get_document(run_id, "bios.json"))
            assert doc["power"] == ["On", "ForceOff"]  # off again: nothing boots before its run is open
            assert doc["bios"]["attributes"]["ProcTurboMode"] == "Disabled"

            again = steps.bios(call)  # a resume after a crash past the PATCH
            assert again.facts == {"bios_changed": []}
            assert again.message == "the BIOS already runs with the profile's settings"
    assert emu.log.read_text().count("PATCH /redfish/v1/Systems/") == 1
    assert emu.log.read_text().count("ComputerSystem.Reset") == 2  # On, then ForceOff


def test_bios_step_is_skipped_without_a_bios_block_and_refuses_unknown_names(
    tmp_path: Path, profiles_copy: Path
) -> None:
    with bios_emulator(tmp_path / "emu", NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        steps, call, store, _ = _step(tmp_path, profiles_copy, None)
        with store:
            assert steps.bios(call).skipped
        steps, call, store, _ = _step(
            tmp_path / "b", profiles_copy, {"attributes": {"ProcTurbo": "Disabled"}}
        )
        with store, pytest.raises(BadInput) as exc:
            steps.bios(call)
    assert "bios:ProcTurbo: expected an attribute the BMC's registry lists, got not in" in str(exc.value)
    assert "PATCH" not in emu.log.read_text()
