"""`provision firmware HOST --update COMPONENT=IMAGE` against tests.support.update_server (DSP0266
UpdateService: multipart push, SimpleUpdate with an ImageURI the service fetches, Tasks, OnReset):
the image is pushed once, the Task followed, the host power cycled where needed, the version read
back; downgrades, parts the BMC cannot update and a host burning in are refused."""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provision.flow.firmware_steps import _image_digest
from provision.store.state import HostState, StateStore
from tests.support.procs import free_port, running
from tests.support.redfish_rig import REPO, cli, set_bmc

HOST = "inferno-host-compute-1"


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")


@contextmanager
def update_bmc(tmp_path: Path, profiles: Path, *flags: str) -> Iterator[Path]:
    """The update server on a free loopback port, HOST's bmc pointed at it; yields its request log."""
    port, log = free_port(), tmp_path / "requests.log"
    log.touch()
    argv = [
        sys.executable,
        "-m",
        "tests.support.update_server",
        "--port",
        str(port),
        "--requests-log",
        str(log),
    ]
    with running([*argv, *flags], log=tmp_path / "update-server.log", port=port, cwd=REPO):
        set_bmc(profiles, HOST, url=f"http://127.0.0.1:{port}", auth="basic", retry_delay_s=0.05,
                power_timeout_s=3)  # fmt: skip
        yield log


@contextmanager
def image_server(directory: Path) -> Iterator[str]:
    """Where a BMC fetches a SimpleUpdate image from (the operator's or the boot server's HTTP)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def image(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"bios-{version}.bin"
    path.write_text(f"VERSION {version}\n" + "\0" * 64)
    return path


def firmware(
    tmp_path: Path, profiles: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    state = ["--state", str(tmp_path / "state")]
    rc, out, err = cli(["--profiles", str(profiles), *state, "firmware", HOST, "--json", *args], capsys)
    return rc, json.loads(out) if out.strip() else {}, err


def pushes(log: Path) -> list[str]:
    return [
        line for line in log.read_text().splitlines() if line.startswith("POST /redfish/v1/UpdateService")
    ]


def test_multipart_push_follows_the_task_and_reads_the_version_back(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.2")
    with update_bmc(tmp_path, profiles_copy) as log:
        rc, data, err = firmware(
            tmp_path, profiles_copy, capsys, "--update", f"bios={img}", "--image-version", "3.2"
        )
        assert rc == 0, err
        assert data["update"]["before"] == "3.1" and data["update"]["after"] == "3.2"
        update = next(f for f in data["findings"] if f["check"] == "firmware_update")
        assert update["verdict"] == "pass" and update["expected"] == "3.2"
        assert update["observed"].startswith("3.2 (was 3.1; task Completed")
        assert update["evidence"] == [f"firmware.update:{data['update']['run_id']}"]
        assert pushes(log) == ["POST /redfish/v1/UpdateService/upload"]
        assert "Completed, 100%" in err  # the Task's progress, as it went
        # Run again: the part already runs the image's version, so nothing is flashed twice.
        rc, data, err = firmware(
            tmp_path, profiles_copy, capsys, "--update", f"bios={img}", "--image-version", "3.2"
        )
        assert rc == 0, err
        assert len(pushes(log)) == 1
        assert next(r for r in data["firmware"] if r["name"] == "bios")["version"] == "3.2"
    with StateStore.open(tmp_path / "state") as store:
        runs = store.list_runs(HOST, "firmware")
        doc = json.loads(store.get_document(runs[0].id, "firmware-update-BIOS.json"))
    assert doc["state"] == "done" and doc["image"] == "bios-3.2.bin" and doc["via"] == "multipart"
    assert "secret" not in json.dumps(doc)


def test_simple_update_on_reset_power_cycles_to_apply(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image(tmp_path, "3.3")
    with image_server(tmp_path) as url, update_bmc(tmp_path, profiles_copy, "--no-multipart") as log:
        args = ["--update", f"bios={url}/bios-3.3.bin", "--image-version", "3.3", "--apply-time", "OnReset"]
        rc, data, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert rc == 0, err
        assert data["update"]["after"] == "3.3"
        assert pushes(log) == ["POST /redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"]
        resets = [line for line in log.read_text().splitlines() if "ComputerSystem.Reset" in line]
        assert len(resets) == 2  # ForceOff, then On: the pending image installs at the power-on
        assert "power cycling to apply" in err


def test_an_off_host_is_left_off_after_the_update_applied(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.3")
    with update_bmc(tmp_path, profiles_copy, "--power-off") as log:
        args = ["--update", f"bios={img}", "--image-version", "3.3", "--apply-time", "OnReset"]
        rc, data, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert rc == 0, err
        assert data["update"]["after"] == "3.3"
        resets = [line for line in log.read_text().splitlines() if "ComputerSystem.Reset" in line]
        assert len(resets) == 2  # On (the image installs), then off again: nothing boots unasked
        rc, out, _ = cli(["--profiles", str(profiles_copy), "--state", str(tmp_path / "state"),
                          "power", HOST, "status", "--json"], capsys)  # fmt: skip
        assert rc == 0 and json.loads(out)["state"] == "Off"


def test_a_failed_task_fails_with_the_bmc_words(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.2")
    with update_bmc(tmp_path, profiles_copy, "--fail-task"):
        rc, data, err = firmware(
            tmp_path, profiles_copy, capsys, "--update", f"bios={img}", "--image-version", "3.2"
        )
    assert rc == 1, err
    update = next(f for f in data["findings"] if f["check"] == "firmware_update")
    assert update["verdict"] == "fail"
    assert (
        "task Exception" in update["observed"] and "image signature verification failed" in update["observed"]
    )


DOWNGRADE = "runs 3.1; the image brings 3.0, older: refused without --allow-downgrade"
UNKNOWN = "--update fpga: no such entry (FirmwareInventory entries: bios, bmc, CPLD)"


@pytest.mark.parametrize(
    ("update", "version", "message"),
    [
        ("bios=3.0", "3.0", DOWNGRADE),
        ("cpld=9.9", "9.9", "the BMC lists it as not updateable"),
        ("fpga=3.2", "3.2", UNKNOWN),
        ("bios=3.2", None, "--update needs --image-version"),
        ("bios", "3.2", "expected COMPONENT=IMAGE"),
        ("bios=/nonexistent/bios.bin", "3.2", "expected an image file or an http(s) URL"),
    ],
)
def test_refusals_say_why_and_push_nothing(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    update: str,
    version: str | None,
    message: str,
) -> None:
    component, sep, value = update.partition("=")
    if sep and not value.startswith("/"):
        update = f"{component}={image(tmp_path, value)}"
    args = ["--update", update] + (["--image-version", version] if version else [])
    with update_bmc(tmp_path, profiles_copy) as log:
        rc, _, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert rc == 2, err
        assert message in err
        assert pushes(log) == []


def test_downgrade_allowed_when_asked(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.0")
    with update_bmc(tmp_path, profiles_copy):
        args = ["--update", f"bios={img}", "--image-version", "3.0", "--allow-downgrade"]
        rc, data, err = firmware(tmp_path, profiles_copy, capsys, *args)
    assert rc == 0, err
    assert data["update"]["after"] == "3.0"


def test_refused_while_burning_in_and_never_pushed_twice_after_a_crash(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.2")
    args = ["--update", f"bios={img}", "--image-version", "3.2"]
    with update_bmc(tmp_path, profiles_copy) as log:
        with StateStore.open(tmp_path / "state") as store:
            store.set_host_state(HOST, HostState.burning_in, reason="test")
        rc, _, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert rc == 2 and "a burn-in is running" in err
        with StateStore.open(tmp_path / "state") as store:
            store.set_host_state(HOST, HostState.maintenance, reason="test")
            # An earlier run pushed this very image and died before reading back (the journal says so).
            run = store.create_run(HOST, "firmware")
            key = {
                "target": "/redfish/v1/UpdateService/FirmwareInventory/BIOS",
                "sha256": _image_digest(str(img)),
                "image_version": "3.2",
                "state": "pushed",
                "task": "/redfish/v1/TaskService/Tasks/1",
            }
            store.put_document(run.id, "firmware-update-BIOS.json", key)
        rc, data, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert pushes(log) == []  # not pushed again: read back (and power cycled) instead
        assert rc == 1, err  # this service never got the image, so the version did not change: fail
        update = next(f for f in data["findings"] if f["check"] == "firmware_update")
        assert "task pushed by an earlier run" in update["observed"]


class _Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.lines.append(f"{step}: {message}")


def test_the_host_step_brings_parts_to_the_baseline_once(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from types import SimpleNamespace

    from provision.flow.engine import StepName
    from provision.flow.firmware_steps import FirmwareSteps
    from provision.flow.hostenv import HostEnv, StepContext
    from provision.model.catalog import load_catalog
    from tests.test_firmware_inventory import with_baseline

    img = image(tmp_path, "3.2")
    rule = {"minimum": "3.2", "image": str(img), "image_version": "3.2"}
    with_baseline(profiles_copy, {"baseline": {"bios": rule, "bmc": {"minimum": "01.04"}}})
    with update_bmc(tmp_path, profiles_copy) as log:
        catalog = load_catalog(profiles_copy)
        host = catalog.host(HOST)
        profile = catalog.profile_of(host)
        notes = _Notes()
        with StateStore.open(tmp_path / "state") as store:
            run = store.create_run(HOST, "provision")
            env = HostEnv(
                store=store, host=host, profile=profile, timeouts=profile.timeouts,
                progress=notes,  # type: ignore[arg-type]
                catalog=catalog, boot_url="http://127.0.0.1:1", netboot_dir=tmp_path,
                profiles_dir=profiles_copy,
            )  # fmt: skip
            step = FirmwareSteps(StepContext(env, run)).steps()[StepName.firmware]
            call = SimpleNamespace(step=StepName.firmware)
            result = step(call)  # type: ignore[arg-type]
            assert result.message == "1 part(s) updated to the baseline" and result.facts["firmware_updated"][
                0
            ].startswith("bios")
            assert result.evidence == ("firmware-update-BIOS.json",)
            assert any("3.1 -> 3.2" in line for line in notes.lines)
            # The step again (a resumed run): the BIOS meets its baseline now, nothing is pushed.
            again = step(call)  # type: ignore[arg-type]
            assert again.message == "every part meets the baseline"
        assert len(pushes(log)) == 1


def test_sushy_emulator_simple_update_of_the_bios_through_its_system(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real emulator's SimpleUpdate (as its libvirt driver runs it in the lab): no FirmwareInventory
    entry, so the BIOS is targeted through its System; the emulator bumps 1.0.0 to 1.1.0."""
    from tests.support.firmware_emulator import firmware_emulator
    from tests.support.redfish_rig import NODE

    with firmware_emulator(tmp_path / "emu", NODE) as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, auth="basic", retry_delay_s=0.05, power_timeout_s=3)
        args = ["--update", "bios=http://127.0.0.1:9/bios-1.1.0.bin", "--image-version", "1.1.0"]
        rc, data, err = firmware(tmp_path, profiles_copy, capsys, *args)
    assert rc == 0, err
    assert (data["update"]["before"], data["update"]["after"]) == ("1.0.0", "1.1.0")
    update = next(f for f in data["findings"] if f["check"] == "firmware_update")
    assert update["verdict"] == "pass" and "task Completed" in update["observed"]
