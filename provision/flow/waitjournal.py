"""What each host is waiting for, kept in the state store so that `provision status --watch` (another
process, maybe on another machine with a PostgreSQL store) can show it.

`WaitJournal` wraps the run's progress: the first `waiting` call with a new "what" for a host adds a
`waiting` event ({"step", "what", "timeout_s"}) to the host's running run, if any; the next call for
that host that is not a wait (a step starts, finishes or is skipped, a note) adds one with "what"
empty: the wait is over. A wait that repeats its report every few seconds writes nothing more, so a
day-long burn-in costs two rows; one whose figures alone change (power admission's kW) one row per
REWRITE_S at most. `current_wait` reads it back.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provision.flow.waits import Progress
from provision.store.lifecycle import Run
from provision.store.state import StateStore

WAITING = "waiting"
REWRITE_S = 30.0  # the least time between two rows of one wait whose figures alone change


def _shape(what: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "#", what)


@dataclass(frozen=True)
class Wait:
    step: str
    what: str
    since: datetime


class WaitJournal:
    """A Progress that records each host's current wait in the store, then passes every call on."""

    def __init__(
        self, inner: Progress, store: StateStore, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.store = store
        self.clock = clock
        self._waiting: dict[str, tuple[str, str, float]] = {}  # host -> (step, what, when) last recorded
        self._lock = threading.Lock()

    def _due(self, host: str, step: str, what: str) -> bool:
        """Whether this report is news: a wait begins or ends, or its text changes; a change of the
        figures alone ("power: P at 4.1 of 4.99 kW") at most every REWRITE_S."""
        with self._lock:
            last = self._waiting.get(host)
            now = self.clock()
            if last is not None and (last[0], last[1]) == (step, what):
                return False
            figures_only = last is not None and what and last[0] == step and _shape(last[1]) == _shape(what)
            if figures_only and last is not None and now - last[2] < REWRITE_S:
                return False
            if what:
                self._waiting[host] = (step, what, now)
            else:
                self._waiting.pop(host, None)
            return True

    def _record(self, host: str, step: str, what: str, timeout_s: float) -> None:
        if not self._due(host, step, what):
            return
        run = self.store.latest_run(host)
        run_id = run.id if run is not None and run.ended_at is None else None  # None: before its run
        self.store.add_event(
            host, WAITING, {"step": step, "what": what, "timeout_s": timeout_s}, run_id=run_id
        )

    def _over(self, host: str, step: str) -> None:
        if host in self._waiting:
            self._record(host, step, "", 0.0)

    def step_started(self, host: str, step: str, does: str) -> None:
        self._over(host, step)
        self.inner.step_started(host, step, does)

    def step_skipped(self, host: str, step: str, why: str) -> None:
        self._over(host, step)
        self.inner.step_skipped(host, step, why)

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        self._over(host, step)
        self.inner.step_finished(host, step, outcome, elapsed_s, message)

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        self._record(host, step, what, timeout_s)
        self.inner.waiting(host, step, what, elapsed_s, timeout_s)

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        self._over(host, step)
        self.inner.note(host, step, message, data)


def current_wait(store: StateStore, host: str, run: Run | None) -> Wait | None:
    """What `host` waits for now: its latest `waiting` event, unless that says the wait is over, or
    belongs to a run that is not `run` (its latest) or has ended, or (a wait before any run, such as
    a fleet's slot) came before `run` started."""
    events = store.events(host=host, kind=WAITING)
    if not events or not events[-1].payload.get("what"):
        return None
    last = events[-1]
    if last.run_id is not None and (run is None or last.run_id != run.id or run.ended_at is not None):
        return None
    if last.run_id is None and run is not None and run.started_at > last.at:
        return None
    return Wait(str(last.payload.get("step", "")), str(last.payload["what"]), last.at)
