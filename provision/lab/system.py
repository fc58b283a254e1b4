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

PF_KTHREAD = 0x00200000  # include/linux/sched.h
EXEC_WAIT_S = 2.0  # how long an empty /proc/PID/cmdline (a process inside execve) may last


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


def start(
    argv: Sequence[str], *, log: Path, netns: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running process in its own session, stdout and stderr to `log`. The handle
    tells its exit status for sure, which /proc cannot once the PID is gone."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    with open(log, "ab") as out:
        # `ip netns exec` execs the program, so the PID is the program's own
        return subprocess.Popen(
            full,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def spawn(
    argv: Sequence[str], *, log: Path, netns: str | None = None, env: dict[str, str] | None = None
) -> int:
    """`start`, for a process only ever looked at by PID: its PID."""
    return start(argv, log=log, netns=netns, env=env).pid


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, program: str, exec_wait_s: float = EXEC_WAIT_S) -> bool:
    """PID is alive and still runs `program` (a basename or a path fragment of its argv)."""
    deadline = time.monotonic() + exec_wait_s
    while True:
        argv = cmdline(pid)
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            return False
        if argv:
            return any(program in part for part in argv)  # before `ip netns exec` execs, a later arg
        # Empty: a kernel thread, or a process inside execve (from `ip netns exec` to the program,
        # or a shebang to its interpreter), whose new memory has no argv yet. Taking the latter for
        # "exited" failed `lab up` with "sushy-emulator exited before listening" and an empty log.
        if _is_kernel_thread(fields) or time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when PID is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _is_kernel_thread(fields: list[str]) -> bool:
    try:
        return bool(int(fields[6]) & PF_KTHREAD)  # field 9: flags
    except (IndexError, ValueError):
        return True


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
