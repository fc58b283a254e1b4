"""The golden reference: a known-good host's measured figures that later hosts of its class are held
to (performance floors as a share of the golden figure instead of a datasheet peak).

Pure. Stored as JSON in the profiles directory (`golden/<profile>.json`), beside the profile it
calibrates: it is policy for the whole class, reviewed and versioned with the profiles, not state
of one controller machine.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

from burnin.schema import SuiteResult, Verdict
from provision.model.errors import BadInput

GOLDEN_VERSION = 1


@dataclass(frozen=True)
class Golden:
    profile: str
    host: str
    run_id: str
    captured_at: float
    measurements: dict[str, dict[str, float]] = field(default_factory=dict)  # suite -> dotted path -> value

    def reference(self, suite: str, pattern: str) -> float | None:
        """The golden figure for a measurement path; the median over parts where `*` fans out."""
        values = [v for k, v in self.measurements.get(suite, {}).items() if fnmatch(k, pattern)]
        return float(statistics.median(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "golden_version": GOLDEN_VERSION,
            "profile": self.profile,
            "host": self.host,
            "run_id": self.run_id,
            "captured_at": self.captured_at,
            "measurements": self.measurements,
        }


def flatten(measurements: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every numeric leaf under a dotted path ("gpus.0.matmul_tflops")."""
    out: dict[str, float] = {}
    items = measurements.items() if isinstance(measurements, dict) else []
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif isinstance(value, list):
            out.update(flatten({str(i): v for i, v in enumerate(value)}, path + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            out[path] = float(value)
    return out


def capture(profile: str, host: str, run_id: str, captured_at: float, suites: list[SuiteResult]) -> Golden:
    """Figures from the suites that passed (or warned) only: a failed suite is not a reference."""
    good = [s for s in suites if s.verdict in (Verdict.PASS, Verdict.WARN) and not s.error]
    if not good:
        raise BadInput(f"run {run_id}: expected at least one passing suite to capture, got none")
    return Golden(profile, host, run_id, captured_at, {s.suite: flatten(s.measurements) for s in good})


def golden_from_dict(d: dict[str, Any], where: str) -> Golden:
    if d.get("golden_version") != GOLDEN_VERSION:
        raise BadInput(f"{where}: golden_version: expected {GOLDEN_VERSION}, got {d.get('golden_version')!r}")
    try:
        return Golden(
            profile=str(d["profile"]),
            host=str(d["host"]),
            run_id=str(d["run_id"]),
            captured_at=float(d["captured_at"]),
            measurements={
                str(s): {str(k): float(v) for k, v in m.items()} for s, m in d["measurements"].items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInput(f"{where}: expected a golden reference document, got {exc!r}") from None
