"""What `provision host --take-over` and `provision controller` both say and claim: the hosts of a
scan whose runs another controller left, each announced as a line or a JSON object."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from provision.cli.app import App
from provision.cli.progress import JsonProgress
from provision.flow.takeover import Scan, scan_state
from provision.store.lifecycle import RunStatus


class TakeoverLines:
    """The controller's own progress: one line (or JSON object) per claim, finish, stop, hold."""

    def __init__(self, as_json: bool) -> None:
        self.json = JsonProgress(sys.stdout) if as_json else None

    def emit(self, event: str, text: str, **fields: Any) -> None:
        if self.json is not None:
            self.json.emit(event, **fields)
        else:
            click.echo(f"{event} {text}")

    def scan(self, found: Scan) -> None:
        for h in found.held:
            self.emit("held", f"{h.host}: {h.by}", host=h.host, by=h.by)
        for c in found.claimable:
            why = "its controller is gone" if c.run_status == RunStatus.running else "stopped"
            self.emit(
                "claim",
                f"{c.host}: run {c.run_id} ({c.run_status}; {why}), resuming from {c.next_step or 'the end'}",
                host=c.host,
                run_id=c.run_id,
                run_status=c.run_status,
                from_step=c.next_step,
            )


def takeover_names(app: App, names: Sequence[str], as_json: bool) -> list[str]:
    """`provision host --take-over`: the hosts of `names` to claim, each announced."""
    found = scan_state(app.state_dir, names)
    lines = TakeoverLines(as_json)
    lines.scan(found)
    if not found.claimable:
        lines.emit(
            "summary",
            f"take-over: nothing to claim ({len(found.held)} held, {found.finished} with no unfinished run)",
            hosts=[],
        )
    return [c.host for c in found.claimable]
