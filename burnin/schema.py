"""The agent's result contract, shared with the controller (which imports it, never the reverse).

Standard library only, Python >= 3.9. Everything here round-trips through plain JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence

SCHEMA_VERSION = 1


class Verdict(str, Enum):
    """The outcome of one check. Missing or unparsable evidence is INCONCLUSIVE, never PASS."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @staticmethod
    def worst(verdicts: "List[Verdict]") -> "Verdict":
        """FAIL > INCONCLUSIVE > WARN > PASS; an empty list proves nothing: INCONCLUSIVE."""
        if not verdicts:
            return Verdict.INCONCLUSIVE
        order = [Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.WARN, Verdict.PASS]
        return next(v for v in order if v in verdicts)


@dataclass(frozen=True)
class Evidence:
    """What a verdict rests on: the command run, its exit code, and where its raw output is."""

    id: str  # stable within a run, e.g. "cpu.stress_ng"
    command: List[str] = field(default_factory=list)
    exit_code: Optional[int] = None
    duration_s: Optional[float] = None
    artifact: Optional[str] = None  # path relative to the run directory
    sha256: Optional[str] = None  # of the artifact
    excerpt: str = ""  # a few lines of the output worth showing a person
    error: Optional[str] = None  # could not run: missing tool, timeout, crash


@dataclass(frozen=True)
class Finding:
    """One check of one part: expected vs observed, the verdict, and the evidence it rests on."""

    id: str  # unique in a run: "<check>:<component>", e.g. "dimm_count:node"
    check: str  # stable snake_case name, appears in reports and JUnit
    component: str  # "cpu", "dimm:P0 CHANNEL A", "gpu:0 (serial 1652...)", "nvme:S6XXX"
    expected: str
    observed: str
    verdict: Verdict
    evidence: List[str] = field(default_factory=list)  # Evidence ids
    required: bool = True  # an inconclusive required finding blocks acceptance
    source: str = ""  # "redfish", "os", "burnin", "nvml"
    waived: Optional[str] = None  # the profile's reason when `acceptance.not_required` waives it


def make_finding(
    check: str,
    component: str,
    expected: str,
    observed: str,
    verdict: Verdict,
    source: str,
    evidence: Sequence[str] = (),
    required: bool = True,
    suffix: str = "",
) -> Finding:
    """A finding under the id every producer (agent, inspection, validation) gives it:
    "<check>:<component>", plus `suffix` where one component has several of the same check."""
    return Finding(
        id=f"{check}:{component}{suffix}",
        check=check,
        component=component,
        expected=expected,
        observed=observed,
        verdict=verdict,
        evidence=list(evidence),
        required=required,
        source=source,
    )


@dataclass
class SuiteResult:
    suite: str  # "cpu", "memory", "nvme", "boot_disks", "gpu", "soak"
    verdict: Verdict
    started_at: float
    ended_at: float
    measurements: Dict[str, Any] = field(default_factory=dict)
    findings: List[Finding] = field(default_factory=list)
    evidence: List[Evidence] = field(default_factory=list)
    error: Optional[str] = None  # the suite could not run to the end (and why)


@dataclass
class RunResult:
    run_id: str
    host: str
    plan: Dict[str, Any]
    started_at: float
    ended_at: Optional[float]
    inventory: Dict[str, Any]
    suites: List[SuiteResult] = field(default_factory=list)
    telemetry: Optional[str] = None  # path of the time series, relative to the run directory
    agent_version: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def verdict(self) -> Verdict:
        return Verdict.worst([s.verdict for s in self.suites])


def to_dict(obj: Any) -> Dict[str, Any]:
    """Dataclass -> JSON-ready dict (enums as their values)."""
    return _plain(asdict(obj))  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def finding_from_dict(d: Dict[str, Any]) -> Finding:
    return Finding(**{**d, "verdict": Verdict(d["verdict"])})


def suite_from_dict(d: Dict[str, Any]) -> SuiteResult:
    return SuiteResult(
        suite=d["suite"],
        verdict=Verdict(d["verdict"]),
        started_at=d["started_at"],
        ended_at=d["ended_at"],
        measurements=d.get("measurements", {}),
        findings=[finding_from_dict(f) for f in d.get("findings", [])],
        evidence=[Evidence(**e) for e in d.get("evidence", [])],
        error=d.get("error"),
    )


def run_from_dict(d: Dict[str, Any]) -> RunResult:
    """Parse a result document; a document of another schema version is refused by the caller."""
    return RunResult(
        run_id=d["run_id"],
        host=d["host"],
        plan=d.get("plan", {}),
        started_at=d["started_at"],
        ended_at=d.get("ended_at"),
        inventory=d.get("inventory", {}),
        suites=[suite_from_dict(s) for s in d.get("suites", [])],
        telemetry=d.get("telemetry"),
        agent_version=d.get("agent_version", ""),
        schema_version=d.get("schema_version", 0),
    )
