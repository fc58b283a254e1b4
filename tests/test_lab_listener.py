"""How `lab up` starts its listening daemons (provision.lab.listener), without a lab: the real
sushy-emulator with the lab's own certificate, htpasswd and config on a free loopback port, a port
held by this test, emulators that die, and the exec window that once read as "exited"."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from provision.lab import listener, system
from provision.lab.domain import OVMF_CODE
from provision.lab.listener import Holder, parse_ss_listeners
from provision.lab.netconf import render_sushy_conf
from provision.lab.tls import make_bmc_secrets
from provision.model.errors import ToolError
from tests.support.procs import free_port

SUSHY = str(Path(sys.executable).parent / "sushy-emulator")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        (
            'LISTEN 0      128    127.0.0.1:52087 0.0.0.0:* users:(("python3",pid=22467,fd=3))\n',
            [Holder(22467, "python3")],
        ),
        (  # a dual-stack socket shared with a forked child: both hold it
            "LISTEN 0      128    *:57661 *:* "
            'users:(("python3",pid=22008,fd=3),("python3",pid=21847,fd=3))\n',
            [Holder(22008, "python3"), Holder(21847, "python3")],
        ),
        (  # two sockets of one process (IPv4 and IPv6): named once
            'LISTEN 0 5 0.0.0.0:8443 0.0.0.0:* users:(("python3",pid=700,fd=3))\n'
            'LISTEN 0 5    [::]:8443    [::]:* users:(("python3",pid=700,fd=4))\n',
            [Holder(700, "python3")],
        ),
        (  # the same socket seen by ss run as nobody: no users column
            "LISTEN 0      128    *:57661 *:*\n",
            [Holder(0, "?")],
        ),
    ],
)
def test_parse_ss_listeners(text: str, expected: list[Holder]) -> None:
    assert parse_ss_listeners(text) == expected


def _sushy_conf(tmp_path: Path, port: int, *, cert: Path | None = None) -> Path:
    secrets = make_bmc_secrets(tmp_path / "bmc", "t1", "127.0.0.1")
    conf = tmp_path / "sushy.conf"
    conf.write_text(
        render_sushy_conf(
            listen_ip="127.0.0.1",
            port=port,
            libvirt_uri=f"qemu+unix:///system?socket={tmp_path}/no-libvirt-sock",
            cert=cert or secrets.server_cert,
            key=secrets.server_key,
            htpasswd=secrets.htpasswd,
            ovmf_code=OVMF_CODE,
        )
    )
    return conf


def test_the_lab_bmc_listens(tmp_path: Path) -> None:
    port = free_port()
    conf = _sushy_conf(tmp_path, port)
    started = listener.start(
        [SUSHY, "--config", str(conf)], program="sushy-emulator", port=port, log=tmp_path / "sushy.log"
    )
    try:
        started.wait()
        assert started.pid in [h.pid for h in listener.listeners(port)]
        assert system.is_ours(started.pid, "sushy-emulator")
    finally:
        system.stop(started.pid, "sushy-emulator")
    assert not system.is_ours(started.pid, "sushy-emulator")


def test_a_held_port_names_its_holder_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ToolError) as err:
            listener.start(
                [SUSHY, "--config", str(tmp_path / "unused.conf")],
                program="sushy-emulator",
                port=port,
                log=tmp_path / "sushy.log",
            )
    msg = str(err.value)
    assert msg.startswith(f"sushy-emulator: expected :{port} free, got it held by pid {os.getpid()} (")
    assert "pytest" in msg or "python" in msg  # the holder's own command line
    assert not (tmp_path / "sushy.log").exists()


def test_a_dying_emulator_says_why_in_its_own_words(tmp_path: Path) -> None:
    port = free_port()
    conf = _sushy_conf(tmp_path, port, cert=tmp_path / "missing" / "bmc.pem")
    log = tmp_path / "sushy.log"
    log.write_text("an earlier run's line\n")
    started = listener.start([SUSHY, "--config", str(conf)], program="sushy-emulator", port=port, log=log)
    with pytest.raises(ToolError) as err:
        started.wait()
    msg = str(err.value)
    assert msg.startswith(
        f"sushy-emulator (pid {started.pid}) exited with status 1 before listening on :{port}; "
    )
    assert f"its output ({log}): " in msg
    assert "FileNotFoundError: [Errno 2] No such file or directory" in msg
    assert "earlier run" not in msg


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "import os, signal, sys; print('about to go', file=sys.stderr, flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)",
            "exited on signal SIGKILL before listening on :{port}; its output ({log}): about to go",
        ),
        ("raise SystemExit(0)", "exited with status 0 before listening on :{port}; it wrote nothing"),
    ],
)
def test_how_a_daemon_died(tmp_path: Path, code: str, expected: str) -> None:
    port = free_port()
    log = tmp_path / "d.log"
    started = listener.start([sys.executable, "-c", code], program="python", port=port, log=log)
    with pytest.raises(ToolError) as err:
        started.wait()
    assert expected.format(port=port, log=log) in str(err.value)


def test_nothing_listening_in_time(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "d.log"
    code = "import sys, time; print('still loading', file=sys.stderr, flush=True); time.sleep(60)"
    started = listener.start([sys.executable, "-c", code], program="python", port=port, log=log)
    try:
        with pytest.raises(ToolError) as err:
            started.wait(timeout_s=1)
    finally:
        system.stop(started.pid, "python")
    assert str(err.value) == (
        f"python (pid {started.pid}): expected it listening on :{port} within 1 s, got nothing listening; "
        f"its output ({log}): still loading"
    )


def test_a_daemon_inside_execve_is_not_taken_for_dead(tmp_path: Path) -> None:
    """`ip netns exec` (here `env`) execs the daemon; its shebang execs the interpreter. In between,
    /proc/PID/cmdline is empty for a while, which `is_ours` once read as "exited"."""
    daemon = tmp_path / "fake-sushy-emulator"
    daemon.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    daemon.chmod(0o755)
    misread = 0
    for _ in range(8):
        proc = system.start(["env", str(daemon)], log=tmp_path / "d.log")
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.3:
                if not system.is_ours(proc.pid, "fake-sushy-emulator") and proc.poll() is None:
                    misread += 1
        finally:
            system.stop(proc.pid, "fake-sushy-emulator")
            proc.wait()
    assert misread == 0
