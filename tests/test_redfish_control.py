"""Power and boot control against the real sushy-emulator (fake driver), over HTTP and over TLS with
htpasswd auth. The emulator applies power changes a second late, so every change is really waited for."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.redfish_rig import cli, emulator, htpasswd, make_cert, set_bmc

HOST = "inferno-host-master"
CANARY = "Canary-pw-7f3a9c"


@pytest.fixture
def iso_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server with an ISO, for virtual media and HTTP boot (the emulator downloads it)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "boot.iso").write_bytes(b"\0" * 4096)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/boot.iso"
    finally:
        server.shutdown()
        server.server_close()


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_power_changes_wait_for_the_state_and_repeat_as_no_ops(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", f"admin:{CANARY}")
    with emulator(tmp_path / "emu") as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, power_timeout_s=30)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]

        rc, out, _ = cli([*base, "power", HOST, "status", "--json"], capsys)
        assert (rc, _json(out)["state"]) == (0, "Off")

        rc, out, _ = cli([*base, "power", HOST, "on", "--json"], capsys)
        on = _json(out)
        assert rc == 0
        assert (on["previous"], on["state"], on["changed"], on["steps"]) == ("Off", "On", True, ["On"])

        rc, out, _ = cli([*base, "power", HOST, "on", "--json"], capsys)
        again = _json(out)
        assert (rc, again["state"], again["changed"], again["steps"]) == (0, "On", False, [])

        rc, out, _ = cli([*base, "power", HOST, "off"], capsys)  # graceful
        assert rc == 0 and "power Off after GracefulShutdown" in out

        rc, out, _ = cli([*base, "power", HOST, "cycle", "--json"], capsys)
        cycle = _json(out)
        assert (rc, cycle["state"], cycle["steps"]) == (0, "On", ["On"])  # it was off: only On was needed

        rc, out, _ = cli([*base, "power", HOST, "cycle", "--json"], capsys)
        assert _json(out)["steps"] == ["ForceOff", "On"]

        rc, out, _ = cli([*base, "power", HOST, "off", "--force", "--json"], capsys)
        assert (rc, _json(out)["state"], _json(out)["steps"]) == (0, "Off", ["ForceOff"])
    # The emulator really saw the actions, in order.
    log = emu.log.read_text()
    # on, graceful off, on (cycle from off), force off + on (cycle), force off
    assert log.count("POST /redfish/v1/Systems/27946b59-9e44-4fa7-8e91-f3527a1ef094/Actions") == 6


def test_boot_overrides_read_back_pxe_disk_virtual_media_and_http_boot(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    iso_server: str,
) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", f"admin:{CANARY}")
    with emulator(tmp_path / "emu") as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1)
        base = ["--profiles", str(profiles_copy)]

        rc, out, _ = cli([*base, "boot", HOST, "pxe", "--json"], capsys)
        pxe = _json(out)
        assert rc == 0
        assert (pxe["target"], pxe["mode"], pxe["attempts"]) == ("Pxe", "UEFI", 1)
        # The emulator always reports Continuous; we accept it for a one-time request, but say so.
        assert pxe["enabled"] == "Continuous"
        assert any("Continuous for a one-time override" in n for n in pxe["notes"])  # type: ignore[attr-defined]

        rc, out, _ = cli([*base, "boot", HOST, "pxe", "--restart", "--json"], capsys)
        restarted = _json(out)
        assert (rc, restarted["target"]) == (0, "Pxe")
        assert restarted["power"] == {**restarted["power"], "state": "On", "previous": "Off", "steps": ["On"]}

        rc, out, _ = cli([*base, "boot", HOST, "disk", "--mode", "legacy", "--json"], capsys)
        assert (rc, _json(out)["target"], _json(out)["mode"]) == (0, "Hdd", "Legacy")

        rc, out, _ = cli([*base, "boot", HOST, "cd", "--virtual-media", iso_server, "--json"], capsys)
        cd = _json(out)
        assert (rc, cd["target"], cd["media"], cd["mode"]) == (0, "Cd", iso_server, "UEFI")

        rc, out, _ = cli([*base, "boot", HOST, "disk", "--json"], capsys)
        disk = _json(out)
        assert rc == 0 and disk["target"] == "Hdd"
        assert disk["ejected"] == ["/redfish/v1/Systems/27946b59-9e44-4fa7-8e91-f3527a1ef094/VirtualMedia/Cd"]

        rc, out, _ = cli([*base, "boot", HOST, "http", "--http-boot", iso_server, "--json"], capsys)
        http = _json(out)
        assert (rc, http["http_boot_uri"]) == (0, iso_server)

        rc, _, err = cli([*base, "boot", HOST, "http"], capsys)
        assert rc == 2 and "boot http: expected --http-boot URI, got none" in err
        rc, _, err = cli([*base, "boot", HOST, "pxe", "--virtual-media", iso_server], capsys)
        assert rc == 2 and "--virtual-media: expected device cd, got pxe" in err


def test_tls_with_ca_bundle_and_htpasswd_and_the_password_never_leaks(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cert, key = make_cert(tmp_path)
    creds = tmp_path / "bmc.secret"
    creds.write_text(f"admin:{CANARY}\n")
    auth = htpasswd(tmp_path, "admin", CANARY)
    state = tmp_path / "state"
    with emulator(tmp_path / "emu", tls=(cert, key), auth_file=auth, power_state="On") as emu:
        base = ["--profiles", str(profiles_copy), "--state", str(state)]
        set_bmc(
            profiles_copy,
            HOST,
            url=emu.url,
            credentials=f"file:{creds}",
            verify_tls=str(cert),
            retry_delay_s=0.1,
        )
        rc, out, err = cli([*base, "power", HOST, "status", "--json"], capsys)
        assert (rc, _json(out)["state"]) == (0, "On"), err
        rc, out2, err2 = cli([*base, "boot", HOST, "pxe", "--json"], capsys)
        assert rc == 0, err2

        # Our CA bundle is the only thing that makes this certificate trusted.
        set_bmc(profiles_copy, HOST, verify_tls=True)
        rc, _, err3 = cli([*base, "power", HOST, "status"], capsys)
        assert (
            rc == 3 and emu.url in err3 and "TLS certificate not trusted" in err3 and "Traceback" not in err3
        )

        set_bmc(profiles_copy, HOST, verify_tls=False)
        rc, _, err4 = cli([*base, "power", HOST, "status"], capsys)
        assert rc == 0
        assert "TLS verification is OFF" in caplog.text

        creds.write_text("admin:wrong-password\n")
        set_bmc(profiles_copy, HOST, verify_tls=str(cert))
        rc, _, err5 = cli([*base, "power", HOST, "status"], capsys)
        assert rc == 3 and "HTTP 401" in err5 and emu.url in err5

    stored = (
        "".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())
        if state.exists()
        else ""
    )
    for text in (out, err, out2, err2, err3, err4, err5, caplog.text, stored):
        assert CANARY not in text
    assert "/redfish/v1/Systems" in caplog.text  # the debug log was really captured


def test_missing_credentials_is_bad_input(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERNO_BMC_MASTER", raising=False)
    rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    assert rc == 2
    assert "bmc.credentials: expected environment variable INFERNO_BMC_MASTER to be set, got unset" in err
    monkeypatch.setenv("INFERNO_BMC_MASTER", "no-colon-here")
    rc, _, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    assert rc == 2 and "expected 'user:password'" in err and "no-colon-here" not in err


@pytest.mark.parametrize(
    ("auth", "rc", "says"), [("basic", 0, "power Off"), ("session", 3, "no SessionService")]
)
def test_auth_modes_against_a_bmc_without_sessions(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
    rc: int,
    says: str,
) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", f"admin:{CANARY}")
    with emulator(tmp_path / "emu") as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, auth=auth, retry_delay_s=0.05)
        got, out, err = cli(["--profiles", str(profiles_copy), "power", HOST, "status"], capsys)
    assert got == rc
    assert says in out + err
