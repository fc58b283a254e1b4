"""snmpsim (a real SNMP agent simulator) serving the recorded PDU walks of tests/data/snmp on a free
loopback UDP port, stopped by PID. Each data file answers to the community of its name (v2c) and to
the SNMPv3 context of its name for the v3 user below."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.pdu.snmp import SnmpAuth, SnmpFailure, SnmpTarget, walk_columns
from tests.support.procs import running

DATA = Path(__file__).resolve().parents[1] / "data" / "snmp"
V3_USER, V3_AUTH_KEY, V3_PRIV_KEY = "pduadmin", "auth-key-9f3c", "priv-key-71ad"


@dataclass(frozen=True)
class Agent:
    host: str
    port: int
    pid: int


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def snmpsim(work: Path) -> Iterator[Agent]:
    port = free_udp_port()
    cache = work / "snmpsim-cache"
    cache.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "snmpsim-command-responder"
    argv = [
        str(exe),
        f"--data-dir={DATA}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
        f"--v3-user={V3_USER}",
        f"--v3-auth-key={V3_AUTH_KEY}",
        "--v3-auth-proto=SHA256",
        f"--v3-priv-key={V3_PRIV_KEY}",
        "--v3-priv-proto=AES",
    ]
    # As root snmpsim wants to drop to a user; this one only listens on loopback for the test.
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    with running(argv, log=work / "snmpsim.log", env=env) as proc:
        _wait_answering(port, proc.pid, work / "snmpsim.log")
        yield Agent("127.0.0.1", port, proc.pid)


def _wait_answering(port: int, pid: int, log: Path, timeout_s: float = 30.0) -> None:
    """UDP has no connect to wait for: ask for sysDescr until the agent answers."""
    probe = SnmpTarget("127.0.0.1", port, SnmpAuth("v2c", community="raritan"), timeout_s=0.3, retries=0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if walk_columns(probe, ["1.3.6.1.2.1.1.1"])["1.3.6.1.2.1.1.1"]:
                return
        except SnmpFailure:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise RuntimeError(f"snmpsim exited before answering: {log.read_text()[-2000:]}") from None
    raise TimeoutError(f"snmpsim did not answer on 127.0.0.1:{port} within {timeout_s} s")


@contextmanager
def silent_agent() -> Iterator[int]:
    """A UDP port that is bound and never answers: a PDU whose SNMP agent hangs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@dataclass(frozen=True)
class HungAgent:
    """A bound UDP port that never answers, and tells when a request reached it."""

    port: int
    sock: socket.socket

    def request(self, timeout_s: float) -> bool:
        """True once an SNMP request arrives (the asker now waits out its timeout); False if none."""
        self.sock.settimeout(timeout_s)
        try:
            return bool(self.sock.recv(65535))
        except TimeoutError:
            return False


@contextmanager
def hung_agent() -> Iterator[HungAgent]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield HungAgent(int(s.getsockname()[1]), s)
