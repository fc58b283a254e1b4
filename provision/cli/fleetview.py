"""The fleet at a glance, for `provision status --watch`: one line per host (state, current step of
its latest run, what it waits for, elapsed time of that run, verdict), read from the state store, and
three ways to show it: a rich table on a terminal, plain lines (one per change), JSON lines.

`fleet_lines` reads (adapter: the store); the renderers are pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.table import Table

from provision.flow.waitjournal import current_wait
from provision.store.lifecycle import HostState, ts
from provision.store.state import StateStore

ACCEPTANCE = "acceptance"  # the event provision.acceptance.runs records with the run's verdict


@dataclass(frozen=True)
class FleetLine:
    host: str
    state: str
    run_id: str | None
    run_status: str | None
    step: str | None  # the latest step of the latest run
    step_outcome: str | None  # None while that step runs
    waiting_for: str | None
    waiting_since: datetime | None
    elapsed_s: float | None  # of the latest run, to its end or to now
    verdict: str | None  # of the latest run, once judged

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "run_id": self.run_id,
            "run_status": self.run_status,
            "step": self.step,
            "step_outcome": self.step_outcome,
            "waiting_for": self.waiting_for,
            "waiting_since": ts(self.waiting_since) if self.waiting_since else None,
            "elapsed_s": round(self.elapsed_s, 1) if self.elapsed_s is not None else None,
            "verdict": self.verdict,
        }

    def change_key(self) -> tuple[Any, ...]:
        """What makes a plain line worth printing again: everything but the clock."""
        return (self.state, self.run_id, self.run_status, self.step, self.step_outcome, self.waiting_for,
                self.verdict)  # fmt: skip

    @property
    def step_text(self) -> str:
        if self.step is None:
            return "-"
        return self.step if self.step_outcome is None else f"{self.step} ({self.step_outcome})"


def fleet_lines(store: StateStore | None, inventory: Iterable[str], now: datetime) -> list[FleetLine]:
    """Every host of the inventory and of the store, in name order (never seen: enrolled)."""
    rows = {r.name: r for r in store.list_hosts()} if store is not None else {}
    names = sorted(set(inventory) | set(rows))
    lines = []
    for name in names:
        row = rows.get(name)
        state = str(row.state) if row else str(HostState.enrolled)
        if store is None:
            lines.append(FleetLine(name, state, None, None, None, None, None, None, None, None))
            continue
        run = store.latest_run(name)
        wait = current_wait(store, name, run)
        step = outcome = verdict = None
        elapsed_s = None
        if run is not None:
            steps = store.steps(run.id)
            if steps:
                step = steps[-1].step
                outcome = str(steps[-1].outcome) if steps[-1].outcome else None
            judged = store.events(run_id=run.id, kind=ACCEPTANCE)
            if judged:
                verdict = str(judged[-1].payload.get("verdict")) or None
            elapsed_s = max(0.0, ((run.ended_at or now) - run.started_at).total_seconds())
        if wait is not None and wait.step not in ("", "-"):
            step, outcome = wait.step, None
        lines.append(
            FleetLine(
                name,
                state,
                run.id if run else None,
                str(run.status) if run else None,
                step,
                outcome,
                wait.what if wait else None,
                wait.since if wait else None,
                elapsed_s,
                verdict,
            )
        )
    return lines


def duration_text(seconds: float | None) -> str:
    """`42s`, `7m05s`, `3h02m`, `2d04h`: short enough for a column, exact enough to see progress."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _waiting_text(line: FleetLine, now: datetime) -> str:
    if line.waiting_for is None:
        return "-"
    since = f" ({duration_text((now - line.waiting_since).total_seconds())})" if line.waiting_since else ""
    return line.waiting_for + since


def state_counts(lines: Iterable[FleetLine]) -> str:
    counts = Counter(line.state for line in lines)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def render_table(lines: list[FleetLine], now: datetime, where: str) -> Table:
    counts = state_counts(lines) or "none"
    table = Table(
        title=f"{where} at {now.strftime('%H:%M:%S')}Z: {len(lines)} host(s); {counts}",
        title_justify="left",
        header_style="bold",
    )
    for column in ("host", "state", "step", "waiting for", "elapsed", "verdict"):
        table.add_column(column, overflow="fold")
    colours = {"accepted": "green", "handed-off": "green", "rejected": "red", "maintenance": "yellow"}
    for line in lines:
        colour = colours.get(line.state)
        state = f"[{colour}]{line.state}[/{colour}]" if colour else line.state
        table.add_row(
            line.host,
            state,
            line.step_text,
            _waiting_text(line, now),
            duration_text(line.elapsed_s),
            line.verdict or "-",
        )
    return table


def plain_line(line: FleetLine, now: datetime) -> str:
    """One line per change, no control codes: the time, then the host's columns as key=value."""
    waiting = f' waiting_for="{line.waiting_for}"' if line.waiting_for else ""
    step = line.step_text.replace(" ", "")
    return (
        f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')} {line.host} state={line.state} step={step}"
        f"{waiting} elapsed={duration_text(line.elapsed_s)} verdict={line.verdict or '-'}"
    )


def snapshot(lines: list[FleetLine], now: datetime) -> dict[str, Any]:
    """One refresh as one JSON object."""
    return {
        "at": ts(now),
        "counts": dict(Counter(line.state for line in lines)),
        "hosts": [x.to_dict() for x in lines],
    }
