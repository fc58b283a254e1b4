"""Start `tests.support.expand_server` on a free loopback port in its own process group, and stop it by
PID, always. The requests it logs are read back with `requests_of`."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import free_port, running

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ExpandService:
    url: str
    port: int
    pid: int
    requests_log: Path

    def requests(self, method: str = "GET") -> list[str]:
        """The targets (path and query) of the requests with `method` received so far, in order."""
        if not self.requests_log.is_file():
            return []
        lines = self.requests_log.read_text(encoding="utf-8").splitlines()
        return [line.split(" ", 1)[1] for line in lines if line.startswith(f"{method} ")]

    def reset(self) -> None:
        self.requests_log.write_text("", encoding="utf-8")


@contextmanager
def expand_service(
    mockup: Path, work: Path, *, expand: bool = True, fail: Sequence[str] = (), delay_s: float = 0.0
) -> Iterator[ExpandService]:
    """The test Redfish server over `mockup` (short form); `fail`: PATH=STATUS answers to inject."""
    port = free_port()
    log = work / f"requests-{port}.log"
    argv = [sys.executable, "-m", "tests.support.expand_server", "--mockup", str(mockup),
            "--port", str(port), "--requests-log", str(log)]  # fmt: skip
    if not expand:
        argv.append("--no-expand")
    if delay_s:
        argv += ["--delay-s", str(delay_s)]
    for item in fail:
        argv += ["--fail", item]
    with running(argv, log=work / f"expand-server-{port}.log", port=port, cwd=REPO) as proc:
        yield ExpandService(f"http://127.0.0.1:{port}", port, proc.pid, log)
