"""Adapter: start a lab daemon that must listen on a TCP port (the BMC, the install mirror) and
say exactly why when it does not: the port already held (by which PID and command line), the
daemon's own exit status and stderr when it dies first, or its output when nothing listens in time.

Whether it died is asked of its process handle (waitpid), not of /proc: the PID's command line is
empty while `ip netns exec` execs the daemon, which once read as "exited" with nothing in the log.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.lab import system
from provision.model.errors import ToolError

_USER_RE = re.compile(r'\("(?P<name>(?:[^"\\]|\\.)*)",pid=(?P<pid>\d+),fd=\d+\)')
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # werkzeug colours its banner
TAIL_LINES = 3


@dataclass(frozen=True)
class Holder:
    """A process with a listening socket on the port, as `ss -p` names it."""

    pid: int
    name: str  # the kernel's short name (comm)


def parse_ss_listeners(text: str) -> list[Holder]:
    """`ss -Hltnp` output -> the processes holding the listening sockets, once each. A line
    without a users:(...) column (a socket of a process ss may not see) counts as pid 0."""
    holders: list[Holder] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        found = [Holder(int(m["pid"]), m["name"]) for m in _USER_RE.finditer(line)] or [Holder(0, "?")]
        holders.extend(h for h in found if h not in holders)
    return holders


def listeners(port: int, netns: str | None = None) -> list[Holder]:
    return parse_ss_listeners(system.run(["ss", "-Hltnp", f"sport = :{port}"], netns=netns))


def describe(holders: Sequence[Holder]) -> str:
    parts = []
    for h in holders:
        if h.pid == 0:
            parts.append("a socket whose process ss cannot name")
            continue
        argv = " ".join(system.cmdline(h.pid))
        shown = argv if len(argv) <= 120 else argv[:117] + "..."
        parts.append(f"pid {h.pid} ({shown or h.name})")
    return ", ".join(parts)


def _where(port: int, netns: str | None) -> str:
    return f":{port} in netns {netns}" if netns else f":{port}"


@dataclass
class Starting:
    """A daemon started, not yet known to listen; `wait` tells which."""

    proc: subprocess.Popen[bytes]
    program: str
    port: int
    netns: str | None
    log: Path
    log_from: int  # the log's size before this start: earlier runs' lines are not this one's

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout_s: float = 30.0) -> None:
        """Return once the daemon listens on its port; ToolError saying why it did not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ToolError(self._died(rc))
            holders = listeners(self.port, self.netns)
            if any(h.pid in (self.pid, 0) for h in holders):
                return
            time.sleep(0.2)
        raise ToolError(
            f"{self.program} (pid {self.pid}): expected it listening on {_where(self.port, self.netns)} "
            f"within {timeout_s:.0f} s, got nothing listening; {self.output()}"
        )

    def _died(self, rc: int) -> str:
        how = f"on signal {signal.Signals(-rc).name}" if rc < 0 else f"with status {rc}"
        where = _where(self.port, self.netns)
        msg = f"{self.program} (pid {self.pid}) exited {how} before listening on {where}"
        others = [h for h in listeners(self.port, self.netns) if h.pid != self.pid]
        if others:
            msg += f"; the port is held by {describe(others)}"
        return f"{msg}; {self.output()}"

    def output(self) -> str:
        """The last lines this start wrote to its log (its stderr), or that it wrote nothing."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_from)
                text = f.read().decode(errors="replace")
        except OSError as exc:
            return f"its log {self.log} is unreadable: {exc.strerror}"
        lines = _ANSI_RE.sub("", text).splitlines()
        tail = [line.strip() for line in lines if line.strip()][-TAIL_LINES:]
        if not tail:
            return f"it wrote nothing to stdout or stderr ({self.log})"
        return f"its output ({self.log}): {' | '.join(tail)}"


def start(argv: Sequence[str], *, program: str, port: int, log: Path, netns: str | None = None) -> Starting:
    """Start `argv` (in `netns`) once `port` is free there; ToolError naming the holder otherwise."""
    held = listeners(port, netns)
    if held:
        raise ToolError(f"{program}: expected {_where(port, netns)} free, got it held by {describe(held)}")
    log_from = log.stat().st_size if log.exists() else 0
    proc = system.start(argv, log=log, netns=netns)
    return Starting(proc, program, port, netns, log, log_from)
