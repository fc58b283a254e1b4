"""The compute host's fixtures (tests/fixtures/lust-*) as editable plain data, and the validated
findings of any edited copy. Tests edit the dicts to make one piece of evidence pass, fail or vanish."""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burnin.hardware import inventory_from_dict
from burnin.schema import Finding, run_from_dict
from provision.acceptance.golden import Golden
from provision.acceptance.timeseries import parse_telemetry
from provision.acceptance.validation import validate
from provision.model.catalog import Catalog, load_catalog
from provision.model.profile import Profile
from tests.conftest import PROFILES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOST = "inferno-host-compute-1"


@functools.cache
def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load_json(name: str) -> Any:
    return json.loads(_text(name))


@functools.cache
def catalog() -> Catalog:
    """The shipped catalog, loaded once: models are frozen, so sharing it is safe."""
    return load_catalog(PROFILES)


@dataclass
class Bundle:
    pre: dict[str, Any] | None = field(default_factory=lambda: load_json("lust-redfish-inventory.json"))
    result: dict[str, Any] = field(default_factory=lambda: load_json("lust-result.json"))
    telemetry: list[str] | None = field(default_factory=lambda: _text("lust-telemetry.jsonl").splitlines())

    @property
    def inos(self) -> dict[str, Any]:
        return self.result["inventory"]  # type: ignore[no-any-return]

    def suite(self, name: str) -> dict[str, Any]:
        return next(s for s in self.result["suites"] if s["suite"] == name)

    def findings(self, profile: Profile | None = None, golden: Golden | None = None) -> list[Finding]:
        host = catalog().host(HOST)
        run = run_from_dict(copy.deepcopy(self.result))
        return validate(
            profile or catalog().profile_of(host),
            pre_os=inventory_from_dict(self.pre) if self.pre is not None else None,
            in_os=inventory_from_dict(self.inos) if self.result.get("inventory") else None,
            planned=run.plan.get("suites", []),
            suites=run.suites,
            telemetry=parse_telemetry(self.telemetry) if self.telemetry is not None else None,
            golden=golden,
            host=host,
        )


def by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


def golden(triad_gbs: float) -> Golden:
    """A golden reference of the compute class holding only a memory triad figure."""
    return Golden(
        "circle-2-lust", "inferno-host-compute-0", "golden-run", 0.0, {"memory": {"triad_gbs": triad_gbs}}
    )
