"""What one reading of a PDU holds: its inlets' and outlets' power and current, when it was taken, or
why it is inconclusive. Pure.

A value the PDU did not give (noSuchObject, -1 "not supported", a meter without a scale) is None,
never 0: a dead PDU must not look like an idle circuit to the admission or to the burn-in's checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The run document the burn-in's sampler writes (provision.pdu.sampler) and its series names.
POWER_FILE = "power.jsonl"
OUTLET_W, OUTLET_A, CIRCUIT_W, NODE_W = "pdu.outlet_w", "pdu.outlet_a", "pdu.circuit_w", "node.power_w"


@dataclass(frozen=True)
class Meter:
    """One inlet (or phase, or input cord) or one outlet."""

    kind: str  # "inlet" | "outlet"
    number: int  # the outlet's number as hosts.yaml says it (pdu_outlet); the inlet's or phase's
    index: str  # the agent's index suffix, e.g. "1.7" (Raritan pduId.outletId), "1.1.7" (Sentry4)
    power_w: float | None
    current_a: float | None
    name: str | None = None  # the PDU's own label for it, when it has one

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "number": self.number,
            "index": self.index,
            "name": self.name,
            "power_w": self.power_w,
            "current_a": self.current_a,
        }


@dataclass(frozen=True)
class PduReading:
    pdu: str
    taken_at: float  # epoch seconds
    mib: str
    inlets: tuple[Meter, ...] = ()
    outlets: tuple[Meter, ...] = ()
    inconclusive: str | None = None  # why there is no usable reading; None when there is one
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def inlet_w(self) -> float | None:
        """The PDU's measured input: the sum of its inlets (phases, cords), None unless each one read."""
        if self.inconclusive or not self.inlets or any(m.power_w is None for m in self.inlets):
            return None
        return sum(m.power_w or 0.0 for m in self.inlets)

    @property
    def outlets_w(self) -> float | None:
        """The sum of the outlets, None unless each metered outlet read (a PDU without inlet meters)."""
        if self.inconclusive or not self.outlets or any(m.power_w is None for m in self.outlets):
            return None
        return sum(m.power_w or 0.0 for m in self.outlets)

    @property
    def load_w(self) -> float | None:
        """The circuit's load: the inlets' sum, else the outlets' sum; None when neither is whole."""
        inlet = self.inlet_w
        return inlet if inlet is not None else self.outlets_w

    def outlet(self, number: int) -> Meter | None:
        return next((m for m in self.outlets if m.number == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pdu": self.pdu,
            "taken_at": self.taken_at,
            "mib": self.mib,
            "inconclusive": self.inconclusive,
            "load_w": self.load_w,
            "inlets": [m.to_dict() for m in self.inlets],
            "outlets": [m.to_dict() for m in self.outlets],
            "elapsed_s": round(self.elapsed_s, 3),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CircuitLoad:
    """What the fleet's power gate knows of one PDU's circuit: the last good reading's load and when
    it was taken (None before any), and why the latest attempt gave none (None when it did)."""

    pdu: str
    load_w: float | None
    taken_at: float | None  # epoch seconds of the reading load_w comes from
    failed: str | None = None
