"""Progress as plain timestamped lines: for logs, pipes and the per-host files of a fleet.

It takes the calls of the engine's `Progress` protocol (provision.flow.engine). It lives in the flow
package because the fleet writes each host's own log file with it; the terminal and JSON views the
command line chooses between are in provision.cli.progress. Adapter: writes to a stream.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import IO, Any


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def telemetry_text(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    parts = []
    if data.get("suite"):
        parts.append(f"suite {data['suite']}")
    temps = data.get("temps_c") or {}
    if temps:
        parts.append("temps " + ", ".join(f"{k} {v:.0f}°C" for k, v in sorted(temps.items())))
    if data.get("power_w") is not None:
        parts.append(f"power {data['power_w']:.0f} W")
    return "; ".join(parts)


class PlainProgress:
    """One timestamped line per event: for logs, pipes and the per-host files of a fleet."""

    def __init__(self, out: IO[str], prefix_host: bool = True) -> None:
        self.out = out
        self.prefix_host = prefix_host
        self._lock = threading.Lock()

    def _line(self, host: str, text: str) -> None:
        who = f"{host}: " if self.prefix_host else ""
        with self._lock:
            self.out.write(f"{stamp()} {who}{text}\n")
            self.out.flush()

    def step_started(self, host: str, step: str, does: str) -> None:
        self._line(host, f"{step}: started ({does})")

    def step_skipped(self, host: str, step: str, why: str) -> None:
        self._line(host, f"{step}: skipped ({why})")

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        tail = f": {message}" if message else ""
        self._line(host, f"{step}: {outcome} after {elapsed_s:.1f} s{tail}")

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        self._line(host, f"{step}: waiting for {what} ({elapsed_s:.0f} s of {timeout_s:.0f} s)")

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        extra = telemetry_text(data)
        self._line(host, f"{step}: {message}" + (f" [{extra}]" if extra else ""))
