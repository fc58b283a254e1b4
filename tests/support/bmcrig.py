"""A real sushy-emulator (fake driver) holding N systems, as the BMCs of N test hosts.

Every system is one "server": the emulator keeps its power state and boot override, and its
access log lets a test (or the fleet benchmark) count the Redfish requests made per system.
The power-change delay is pinned to 1 s by tests.support.fast_emulator.
"""

from __future__ import annotations

import json
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

    @property
    def path(self) -> str:
        return f"/redfish/v1/Systems/{self.uuid}"


@dataclass
class Emulator:
    url: str
    log: Path
    systems: list[FakeSystem]

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
) -> list[str]:
    """Write the emulator's config; the command line that runs it (state kept under workdir).

    lean: the variant for many systems at once (tests.support.lean_emulator)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "emulator.conf"
    fake = [
        {"uuid": s.uuid, "name": s.name, "power_state": "Off", "nics": [{"mac": s.mac, "ip": "127.0.0.1"}]}
        for s in systems
    ]
    config.write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(workdir / 'emulator-state')!r}\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(fake)}\n"
    )
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
    names: list[str],
    port: int | None = None,
    tree: Path | None = None,
    mockup_system: str = "/redfish/v1/Systems/1",
) -> Iterator[Emulator]:
    """Start sushy-emulator with one fake system per name; stop it by PID, always.

    `tree`: a mockup tree file whose hardware the (single) system shows (tests.support.rich_emulator).
    """
    systems = fake_systems(names)
    port = port or free_port()
    argv = emulator_argv(workdir, systems, port, tree, mockup_system)
    log = workdir / "emulator.log"
    with running(argv, log=log, port=port, cwd=REPO):
        yield Emulator(f"http://127.0.0.1:{port}", log, systems)
