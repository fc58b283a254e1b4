"""What the runner hands each suite: its spec, the plan, the run directory, and the shared services
(event log, telemetry, tool runner). A suite is a module with `run(ctx: SuiteContext) -> SuiteResult`.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from burnin.schema import Evidence


@dataclass(frozen=True)
class ToolRun:
    """A finished external command: its Evidence plus the captured text for parsing."""

    evidence: Evidence
    stdout: str
    stderr: str
    timed_out: bool = False
    missing: bool = False  # the executable was not found


# A sampler returns {series_name: value} each tick; the telemetry thread calls every registered one.
Sampler = Callable[[], Dict[str, float]]


def _no_samples(prefix: str, since: float) -> List[Tuple[float, float]]:
    return []


@dataclass
class SuiteContext:
    run_dir: Path
    spec: Dict[str, Any]  # {"suite", "duration_s", "required", "options"}
    plan: Dict[str, Any]  # the whole plan, including "expect" (facts the controller derived from the profile)
    log: Callable[..., None]  # log(event: str, **fields): one JSON line in the run's event log
    # run_tool(evidence_id, argv, timeout_s, artifact=None, env=None, cwd=None) -> ToolRun
    run_tool: Callable[..., ToolRun]
    add_sampler: Callable[[str, Sampler], None]  # register a telemetry source by name
    mark_phase: Callable[[str], None]  # a phase marker in the time series
    stop: threading.Event = field(default_factory=threading.Event)  # set when the run is cancelled
    # samples(series_prefix, since_epoch) -> [(t, value)]: what the run's telemetry sampled, so a suite
    # can judge temperatures and clocks over its own phase.
    samples: Callable[[str, float], List[Tuple[float, float]]] = _no_samples

    @property
    def duration_s(self) -> float:
        return float(self.spec.get("duration_s", 0))

    @property
    def options(self) -> Dict[str, Any]:
        return dict(self.spec.get("options", {}))

    def expect(self, section: str) -> Dict[str, Any]:
        return dict(self.plan.get("expect", {}).get(section, {}))

    def allow_list(self) -> List[Dict[str, Optional[str]]]:
        """Drives the plan allows destructive tests on, by serial/WWN."""
        return list(self.plan.get("allow_destructive", []))
