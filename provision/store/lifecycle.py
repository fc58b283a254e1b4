"""The lifecycle of a host and the records of its runs: pure models, no I/O.

`provision.store.state` stores and returns them; every command shows them through `to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class HostState(StrEnum):
    enrolled = "enrolled"
    inspected = "inspected"
    provisioning = "provisioning"
    installed = "installed"
    burning_in = "burning-in"
    accepted = "accepted"
    rejected = "rejected"
    handed_off = "handed-off"
    maintenance = "maintenance"


# The states a run moves a host through, from any state: a new (or resumed) run starts over, and this
# is the only way out of `maintenance` (a reinstall) other than a failure of that new run.
RUN_STATES = frozenset(
    {
        HostState.inspected,
        HostState.maintenance,
        HostState.provisioning,
        HostState.installed,
        HostState.burning_in,
    }
)
_JUDGED = frozenset({HostState.accepted, HostState.rejected})

# Where each state may go (`set_host_state` refuses the rest). A verdict needs a host whose OS is
# in place (not `provisioning`) and not out of its pool for a reinstall (`maintenance`: only that
# run's own failure, `rejected`, leaves it); `handed-off` needs `accepted` and never goes back to it.
TRANSITIONS: dict[HostState, frozenset[HostState]] = {
    HostState.enrolled: RUN_STATES | _JUDGED,
    HostState.inspected: RUN_STATES | _JUDGED,
    HostState.provisioning: RUN_STATES | {HostState.rejected},
    HostState.installed: RUN_STATES | _JUDGED,
    HostState.burning_in: RUN_STATES | _JUDGED,
    HostState.accepted: RUN_STATES | _JUDGED | {HostState.handed_off},
    HostState.rejected: RUN_STATES | _JUDGED,
    HostState.handed_off: RUN_STATES | {HostState.rejected, HostState.handed_off},
    HostState.maintenance: RUN_STATES | {HostState.rejected},
}


def transition_allowed(previous: HostState | None, state: HostState) -> bool:
    """A host the store has never seen (no row, no run) may take any first state: there is no history
    to contradict. Otherwise the table decides."""
    return previous is None or state in TRANSITIONS[previous]


class RunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    interrupted = "interrupted"


class StepOutcome(StrEnum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"


def ts(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class HostRow:
    name: str
    state: HostState
    updated_at: datetime
    last_run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": str(self.state),
            "updated_at": ts(self.updated_at),
            "last_run_id": self.last_run_id,
        }


@dataclass(frozen=True)
class HostTransition:
    host: str
    previous: HostState | None
    state: HostState
    reason: str
    at: datetime


@dataclass(frozen=True)
class Run:
    id: str
    host: str
    kind: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "kind": self.kind,
            "status": str(self.status),
            "started_at": ts(self.started_at),
            "ended_at": ts(self.ended_at) if self.ended_at else None,
        }


@dataclass(frozen=True)
class StepRow:
    step: str
    started_at: datetime
    ended_at: datetime | None
    outcome: StepOutcome | None  # None: started, not finished (running, or the run died)
    message: str
    evidence: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "started_at": ts(self.started_at),
            "ended_at": ts(self.ended_at) if self.ended_at else None,
            "outcome": str(self.outcome) if self.outcome else None,
            "message": self.message,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class EventRow:
    id: int
    host: str
    run_id: str | None
    kind: str
    payload: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class DocumentRef:
    run_id: str
    name: str
    path: Path
    sha256: str
    size_bytes: int
    created_at: datetime = field(compare=False)
