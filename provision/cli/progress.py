"""Where `provision host` says what it is doing: a live terminal view or JSON lines (plain log lines
are provision.flow.logprogress).

All three take the same calls from the workflow engine (provision.flow.engine.Progress). During the
burn-in, `note(..., data={"suite":..., "temps_c":..., "power_w":...})` carries the live telemetry.
Adapter: writes to a stream; the rich view owns the terminal while it is live.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from provision.flow.logprogress import stamp, telemetry_text


class JsonProgress:
    """JSON lines, one object per event with `event`, `host`, `step` and `at`; then a summary."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "at": stamp(), **fields}
        with self._lock:
            self.out.write(json.dumps(record, default=str) + "\n")
            self.out.flush()

    def step_started(self, host: str, step: str, does: str) -> None:
        self.emit("step_started", host=host, step=step, does=does)

    def step_skipped(self, host: str, step: str, why: str) -> None:
        self.emit("step_skipped", host=host, step=step, why=why)

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        self.emit(
            "step_finished",
            host=host,
            step=step,
            outcome=outcome,
            elapsed_s=round(elapsed_s, 3),
            message=message,
        )

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        self.emit(
            "waiting", host=host, step=step, what=what, elapsed_s=round(elapsed_s, 1), timeout_s=timeout_s
        )

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.emit("note", host=host, step=step, message=message, data=data or {})


@dataclass
class _HostView:
    step: str = "-"
    since: float = field(default_factory=time.monotonic)
    status: str = "starting"
    detail: str = ""


class RichProgress:
    """A live table on a terminal: per host the current step, its elapsed time, what it waits for,
    and during the burn-in the running suite, temperatures and power. Finished steps scroll above."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._hosts: dict[str, _HostView] = {}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=True)

    def __enter__(self) -> RichProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def _render(self) -> Group:
        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("host", "step", "elapsed", "status"):
            table.add_column(column)
        now = time.monotonic()
        for host, view in sorted(self._hosts.items()):
            detail = f" — {view.detail}" if view.detail else ""
            table.add_row(host, view.step, f"{now - view.since:.0f} s", view.status + detail)
        return Group(table)

    def _update(self, host: str, **changes: Any) -> None:
        with self._lock:
            view = self._hosts.setdefault(host, _HostView())
            for key, value in changes.items():
                setattr(view, key, value)
            self._live.update(self._render())

    def step_started(self, host: str, step: str, does: str) -> None:
        self._update(host, step=step, since=time.monotonic(), status=does, detail="")

    def step_skipped(self, host: str, step: str, why: str) -> None:
        self.console.print(f"[dim]{host}: {step}: skipped ({why})[/dim]")

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        colour = {"ok": "green", "skipped": "dim"}.get(outcome, "red")
        tail = f": {message}" if message else ""
        self.console.print(f"{host}: {step}: [{colour}]{outcome}[/{colour}] after {elapsed_s:.1f} s{tail}")
        self._update(host, status=outcome, detail="")

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        self._update(host, status=f"waiting for {what}", detail=f"timeout {timeout_s:.0f} s")

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        self._update(host, status=message, detail=telemetry_text(data))
