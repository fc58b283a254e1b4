"""Real Redfish services for tests: one system on sushy-emulator (started by tests.support.bmcrig,
the one emulator starter) and sushy-static, on free loopback ports, each in its own process group,
always stopped by PID. Plus TLS and htpasswd files for them, the hosts.yaml rewrite and an
in-process CLI runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.cli.main import main
from tests.support.bmcrig import Emulator, FakeSystem
from tests.support.bmcrig import emulator as bmc_emulator
from tests.support.procs import free_port, running

REPO = Path(__file__).resolve().parents[2]
SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"
SYSTEM_PATH = f"/redfish/v1/Systems/{SYSTEM_UUID}"
NODE = FakeSystem("node-0", SYSTEM_UUID, "3c:ec:ef:10:01:10", "10.0.1.11")


@dataclass(frozen=True)
class Service:
    url: str
    port: int
    pid: int
    log: Path


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (subjectAltName IP), made with openssl."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("openssl is not installed here")
    return cert, key


def htpasswd(directory: Path, user: str, password: str) -> Path:
    import bcrypt  # comes with sushy-tools; the emulator accepts bcrypt hashes only

    path = directory / "htpasswd"
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    path.write_text(f"{user}:{digest}\n")
    return path


@contextmanager
def emulator(work: Path, **options: Any) -> Iterator[Emulator]:
    """The one-system emulator the Redfish tests drive (SYSTEM_PATH), with tests.support.bmcrig's options."""
    with bmc_emulator(work, [NODE], **options) as emu:
        yield emu


@contextmanager
def static(mockup_dir: Path, log: Path) -> Iterator[Service]:
    """sushy-static serving a short-form mockup tree. Read-only: PATCH/POST answer 204, change nothing."""
    port = free_port()
    exe = Path(sys.executable).parent / "sushy-static"
    argv = [str(exe), "-i", "127.0.0.1", "-p", str(port), "-m", str(mockup_dir)]
    with running(argv, log=log, port=port) as proc:
        yield Service(f"http://127.0.0.1:{port}", port, proc.pid, log)


def set_bmc(profiles: Path, host: str, **fields: Any) -> None:
    """Point HOST's bmc block at a test service (and tune its timeouts) in a profiles copy."""
    path = profiles / "hosts.yaml"
    doc = yaml.safe_load(path.read_text())
    for entry in doc["hosts"]:
        if entry["name"] == host:
            entry["bmc"].pop("system", None)
            entry["bmc"].update(fields)
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
