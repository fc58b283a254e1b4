"""The one sushy-emulator starter of the tests: the real emulator (fake driver) holding N systems,
as the BMCs of N test hosts, on a free loopback port, in its own process group, always stopped by
PID.

Every system is one "server": the emulator keeps its power state and boot override, and its
access log lets a test (or the fleet benchmark) count the Redfish requests made per system.
The power-change delay is pinned (1 s by default) by tests.support.fast_emulator. Options: the
systems' first power state, TLS (a certificate and key), an htpasswd file for basic auth, a mockup
tree whose hardware a single system shows (tests.support.rich_emulator), and the lean variant for
many systems at once (tests.support.lean_emulator).
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.procs import free_port, running

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FakeSystem:
    name: str
    uuid: str
    mac: str
    ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        return f"/redfish/v1/Systems/{self.uuid}"


@dataclass
class Emulator:
    url: str
    log: Path
    systems: list[FakeSystem]
    port: int = 0
    pid: int = 0

    def system(self, s: FakeSystem) -> dict[str, object]:
        got = requests.get(f"{self.url}{s.path}", timeout=5)
        got.raise_for_status()
        data: dict[str, object] = got.json()
        return data

    def requests_per_system(self) -> dict[str, int]:
        """Requests the emulator answered, by system uuid (from its werkzeug access log)."""
        counts = {s.uuid: 0 for s in self.systems}
        pattern = re.compile(r'"(?:GET|POST|PATCH|PUT|DELETE) /redfish/v1/Systems/([0-9a-f-]{36})')
        for line in self.log.read_text(errors="replace").splitlines():
            m = pattern.search(line)
            if m and m.group(1) in counts:
                counts[m.group(1)] += 1
        return counts


def fake_systems(names: list[str]) -> list[FakeSystem]:
    out = []
    for i, name in enumerate(names):
        mac = f"52:54:00:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
        out.append(FakeSystem(name, str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name)), mac))
    return out


def emulator_argv(
    workdir: Path,
    systems: list[FakeSystem],
    port: int,
    tree: Path | None = None,
    mockup_system: str = "/redfish/v1/Systems/1",
    lean: bool = False,
    power_state: str = "Off",
    tls: tuple[Path, Path] | None = None,
    auth_file: Path | None = None,
) -> list[str]:
    """Write the emulator's config; the command line that runs it (state kept under workdir).

    lean: the variant for many systems at once (tests.support.lean_emulator)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "emulator.conf"
    fake = [
        {"uuid": s.uuid, "name": s.name, "power_state": power_state, "nics": [{"mac": s.mac, "ip": s.ip}]}
        for s in systems
    ]
    lines = [
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}",
        "SUSHY_EMULATOR_FAKE_DRIVER = True",
        f"SUSHY_EMULATOR_STATE_DIR = {str(workdir / 'emulator-state')!r}",
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(fake)}",
    ]
    if tls:
        lines += [f"SUSHY_EMULATOR_SSL_CERT = {str(tls[0])!r}", f"SUSHY_EMULATOR_SSL_KEY = {str(tls[1])!r}"]
    if auth_file:
        lines.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}")
    config.write_text("\n".join(lines) + "\n")
    argv = [sys.executable, "-m", "tests.support.fast_emulator", "--config", str(config), "--fake"]
    if lean:
        argv[2] = "tests.support.lean_emulator"
    if tree is not None:
        argv[2:3] = ["tests.support.rich_emulator", "--tree", str(tree), "--mockup-system", mockup_system]
        argv[5:5] = ["--uuid", systems[0].uuid]
    return argv


@contextmanager
def emulator(
    workdir: Path,
    systems: list[FakeSystem],
    *,
    power_state: str = "Off",
    tls: tuple[Path, Path] | None = None,
    auth_file: Path | None = None,
    power_delay_s: int = 1,
    tree: Path | None = None,
    mockup_system: str = "/redfish/v1/Systems/1",
) -> Iterator[Emulator]:
    """Start sushy-emulator with these systems (fake_systems(names) makes them); stop it by PID, always.

    `tree`: a mockup tree file whose hardware the (single) system shows (tests.support.rich_emulator).
    `power_delay_s`: how long a power change stays pending (a test that needs it pending sets it long).
    """
    port = free_port()
    argv = emulator_argv(workdir, systems, port, tree, mockup_system, False, power_state, tls, auth_file)
    log = workdir / "emulator.log"
    # The emulator downloads virtual media into TMPDIR: keep it in the test's own folder.
    env = {**os.environ, "TMPDIR": str(workdir), "FAST_EMULATOR_DELAY_S": str(power_delay_s)}
    with running(argv, log=log, port=port, env=env, cwd=REPO) as proc:
        scheme = "https" if tls else "http"
        yield Emulator(f"{scheme}://127.0.0.1:{port}", log, systems, port, proc.pid)


@contextmanager
def extended_emulator(module: str, work: Path, system: FakeSystem, env: dict[str, str]) -> Iterator[Emulator]:
    """sushy-emulator with one system, run through `module`, a test extension that adds to its fake
    driver what only its libvirt driver has (BIOS settings, firmware versions) before starting it;
    `env` tells the extension where to keep that state. Stopped by PID, always."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = emulator_argv(work, [system], port)
    argv[2] = module
    full = {**os.environ, "TMPDIR": str(work), "FAST_EMULATOR_DELAY_S": "1", **env}
    with running(argv, log=work / "emulator.log", port=port, env=full, cwd=REPO) as proc:
        yield Emulator(f"http://127.0.0.1:{port}", work / "emulator.log", [system], port, proc.pid)
