"""Start the real servers a test needs on free loopback ports, and stop them by PID, always."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, host: str = "127.0.0.1", timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process {proc.args!r} exited with {proc.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout_s} s")


def stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM the process group (or process), then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    return
            except ChildProcessError:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)


@contextmanager
def running(
    argv: Sequence[str],
    *,
    log: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready_timeout_s: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run argv in its own process group with output to `log`; wait for `port`; always stop it."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        if port is not None:
            wait_for_port(port, timeout_s=ready_timeout_s, proc=proc)
        yield proc
    finally:
        stop_pid(proc.pid)
