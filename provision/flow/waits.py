"""Waiting, the one way every step waits: with a timeout that names what is awaited, progress while
it waits, and an immediate stop when the run is cancelled (Ctrl-C, SIGTERM, a fleet shutting down).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from provision.model.errors import ExternalError, ProvisionError

T = TypeVar("T")


class FlowInterrupted(ProvisionError):
    """The run was stopped on purpose (Ctrl-C, SIGTERM, fleet shutdown); the journal says where."""

    exit_code = 130


class StepTimeout(ExternalError):
    """A wait ran out of time; the message says what it was waiting for."""


class Progress(Protocol):
    """Where the engine says what it does: a terminal, a log file, or JSON lines."""

    def step_started(self, host: str, step: str, does: str) -> None: ...

    def step_skipped(self, host: str, step: str, why: str) -> None: ...

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None: ...

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None: ...

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None: ...


class Cancel:
    """Set from a signal handler or a fleet's shutdown; every wait checks it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = reason
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when cancelled."""
        if self._event.wait(max(0.0, seconds)):
            raise FlowInterrupted(f"interrupted ({self.reason})")

    def check(self) -> None:
        if self._event.is_set():
            raise FlowInterrupted(f"interrupted ({self.reason})")


@dataclass
class Waiter:
    """Polling with a timeout that names what is awaited, progress while waiting, and cancellation."""

    host: str
    step: str
    progress: Progress
    cancel: Cancel
    clock: Callable[[], float] = time.monotonic
    report_every_s: float = 10.0

    def wait_for(
        self,
        what: str,
        poll: Callable[[], T | None],
        timeout_s: float,
        interval_s: float = 1.0,
        status: Callable[[], str] | None = None,
    ) -> T:
        """Call `poll` until it returns something; raise StepTimeout naming `what` after timeout_s."""
        start = self.clock()
        last_report = start - self.report_every_s
        while True:
            self.cancel.check()
            got = poll()
            if got is not None:
                return got
            now = self.clock()
            elapsed = now - start
            if elapsed >= timeout_s:
                seen = f"; last seen: {status()}" if status else ""
                raise StepTimeout(
                    f"{self.host}: {self.step}: timed out after {timeout_s:.0f} s waiting for {what}{seen}"
                )
            if now - last_report >= self.report_every_s:
                self.progress.waiting(self.host, self.step, what, elapsed, timeout_s)
                last_report = now
            self.cancel.sleep(min(interval_s, max(0.0, timeout_s - elapsed)))
