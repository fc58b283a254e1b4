"""Adapter: run the lab's tools and stop the lab's processes, by PID only.

A PID is stopped only when /proc/PID/cmdline still shows the program the ledger recorded, so a PID
the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from provision.model.errors import ToolError


def run(
    argv: Sequence[str], *, netns: str | None = None, timeout_s: float = 120.0, check: bool = True
) -> str:
    """Run a tool to completion; its stdout, or ToolError with the tail of its stderr."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise ToolError(f"{full[0]}: not installed (make setup installs it)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{' '.join(full[:4])}...: no answer within {timeout_s:.0f} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ToolError(f"{' '.join(full)}: exit {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


def spawn(
    argv: Sequence[str], *, log: Path, netns: str | None = None, env: dict[str, str] | None = None
) -> int:
    """Start a long-running process in its own session, output to `log`; its PID."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            full,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    # `ip netns exec` execs the program, so the PID is the program's own
    return proc.pid


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, program: str) -> bool:
    """PID is alive and still runs `program` (a basename or a path fragment of its argv)."""
    argv = cmdline(pid)
    if not argv:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    return any(program in part for part in argv)  # before `ip netns exec` execs, the program is a later arg


def start_time(pid: int) -> int | None:
    """When PID started, in clock ticks since boot (/proc/PID/stat field 22): with the PID, it names
    one process for good, since a PID the kernel gives out again comes with a later start."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def read_pidfile(path: Path, timeout_s: float = 20.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise ToolError(f"{path}: no PID written within {timeout_s:.0f} s")


def stop(pid: int, program: str, timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL. False when PID no longer ran `program` (nothing was signalled)."""
    if not is_ours(pid, program):
        _reap(pid)
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _reap(pid)
            if not is_ours(pid, program):
                return True
            time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
        os.waitpid(pid, os.WNOHANG)
