"""The BMC client still honours the proxy environment (http_proxy, no_proxy) now that it reads it once
per connection instead of on every request (provision/bmc/redfish.py): against the real
sushy-emulator and a loopback HTTP proxy that records what it is asked and refuses to forward it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.redfish_rig import cli, emulator, set_bmc

HOST = "inferno-host-master"


@pytest.fixture
def refusing_proxy() -> Iterator[tuple[str, list[str]]]:
    """A proxy that answers 502 to everything, recording the request targets it was asked for."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_proxy_environment_is_honoured_and_no_proxy_bypasses_it(
    tmp_path: Path,
    profiles_copy: Path,
    refusing_proxy: tuple[str, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, seen = refusing_proxy
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:password")
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    with emulator(tmp_path / "emu") as emu:
        set_bmc(profiles_copy, HOST, url=emu.url, retry_delay_s=0.1, attempts=1)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]

        rc, out, err = cli([*base, "power", HOST, "status", "--json"], capsys)
        assert rc != 0, out
        assert seen and seen[0] == f"{emu.url}/redfish/v1/", seen  # absolute form: asked of the proxy

        asked = len(seen)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        rc, out, err = cli([*base, "power", HOST, "status", "--json"], capsys)
        assert rc == 0, err
        assert json.loads(out)["state"] == "Off"
        assert len(seen) == asked  # straight to the BMC
