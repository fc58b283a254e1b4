"""A real OpenSSH sshd on a loopback port: the "installed host" of the flow tests.

The test generates the host key (whose public half the installer stand-in posts in its `finished`
callback, so the controller pins it) and a client key the controller logs in with. Stopped by PID.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support.procs import free_port, running


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    client_key: Path
    host_pub: Path  # the public host key(s), one per line: what the installer posts
    log: Path


def _keygen(path: Path, kind: str = "ed25519") -> None:
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)


def sshd_setup(workdir: Path) -> tuple[list[str], Sshd]:
    """Keys and config for a loopback sshd; the command line that runs it."""
    binary = require_tool("sshd")
    if os.geteuid() != 0:
        pytest.skip("sshd on loopback needs root here (privilege separation, login as the test user)")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "ssh_host_ed25519_key", workdir / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    auth = workdir / "authorized_keys"
    auth.write_text(client_key.with_suffix(".pub").read_text())
    auth.chmod(0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {auth}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )
    log = workdir / "sshd.log"
    argv = [binary, "-D", "-e", "-f", str(config)]
    return argv, Sshd(port, getpass.getuser(), client_key, host_key.with_suffix(".pub"), log)


@contextmanager
def sshd(workdir: Path) -> Iterator[Sshd]:
    argv, info = sshd_setup(workdir)
    with running(argv, log=info.log, port=info.port):
        yield info
