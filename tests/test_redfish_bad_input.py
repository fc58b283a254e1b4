"""Every bad-input path of power/boot/inspect: one line naming what is wrong, exit 2, and nothing
sent to a BMC (none listens at the hosts' addresses here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.procs import free_port
from tests.support.redfish_rig import cli, set_bmc

HOST = "inferno-host-master"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["boot", HOST, "http"], "boot http: expected --http-boot URI, got none"),
        (
            ["boot", HOST, "http", "--http-boot", "http://10.0.1.5/x.efi", "--mode", "legacy"],
            "boot http: expected --mode uefi (HTTP boot is a UEFI feature), got legacy",
        ),
        (["boot", HOST, "cd"], "boot cd: expected --virtual-media URL, got none"),
        (
            ["boot", HOST, "pxe", "--virtual-media", "http://10.0.1.5/x.iso"],
            "--virtual-media: expected device cd, got pxe",
        ),
        (
            ["boot", HOST, "disk", "--http-boot", "http://10.0.1.5/x.efi"],
            "--http-boot: expected device http, got disk",
        ),
        (["power", "no-such-host", "status"], "host: expected one of"),
        (["inspect", "no-such-host"], "host: expected one of"),
    ],
)
def test_bad_requests_are_refused_before_any_bmc_call(
    profiles_copy: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    port = free_port()  # were anything sent, it would be refused and the exit code would be 3
    set_bmc(profiles_copy, HOST, url=f"http://127.0.0.1:{port}")
    rc, out, err = cli(["--profiles", str(profiles_copy), *argv], capsys)
    assert (rc, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_a_ca_bundle_that_does_not_exist_is_bad_input(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:secret")
    missing = tmp_path / "no-ca.pem"
    set_bmc(profiles_copy, HOST, url=f"https://127.0.0.1:{free_port()}", verify_tls=str(missing))
    rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    assert rc == 2
    assert f"bmc.verify_tls: expected a CA bundle file, got '{missing}' (no such file)" in err


def test_a_credentials_file_that_cannot_be_read_is_bad_input(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bmc(profiles_copy, HOST, credentials=f"file:{tmp_path / 'absent'}")
    rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    assert rc == 2
    assert (
        f"bmc.credentials: expected a readable file {tmp_path / 'absent'}, got No such file or directory"
        in err
    )
