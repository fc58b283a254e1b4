"""A fleet whose steps are stand-ins but for the admission around them: hosts on named PDUs (the
test profile flow-loopback: a 760 W burn on a 2662 W feed, so three fit one PDU), run by the real
fleet, host runner and engine into a real state store, and what held a resource at once, counted
from the journal's admission stamps. Used by tests/test_admission.py and bench/power_admission.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from provision.flow.admission import ADMISSION_FACT, Admission
from provision.flow.engine import STEPS, Cancel, Progress, StepName, StepResult, Summary
from provision.flow.fleet import FleetRow, run_fleet
from provision.flow.hostrun import RunRequest, run_host
from provision.model.catalog import Catalog, load_catalog
from provision.store.state import StateStore
from tests.support.bmcrig import Emulator, fake_systems
from tests.support.flowrig import write_profiles
from tests.support.procs import free_port


class Recorder:
    """A Progress that keeps what it is told (thread-safe) and runs a hook on each waiting line."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waits: list[tuple[str, str, str]] = []
        self.started: list[tuple[str, str]] = []
        self.finished: list[tuple[str, str, str]] = []
        self.on_wait: Any = None
        self.on_finish: Any = None

    def step_started(self, host: str, step: str, does: str) -> None:
        with self.lock:
            self.started.append((host, step))

    def step_skipped(self, host: str, step: str, why: str) -> None:
        pass

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        with self.lock:
            self.finished.append((host, step, outcome))
        if self.on_finish:
            self.on_finish(host, step, outcome)

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        with self.lock:
            self.waits.append((host, step, what))
        if self.on_wait:
            self.on_wait(host, step, what)

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        pass

    def count(self, step: str) -> int:
        with self.lock:
            return sum(1 for _, s in self.started if s == step)


def catalog_for(tmp_path: Path, pdus: dict[str, str], limits: dict[str, Any] | None = None) -> Catalog:
    """Profiles for the named hosts (flow-loopback: a 760 W burn on a 2662 W feed, so 3 fit a PDU),
    each on the PDU given; BMCs nowhere (these tests stand in for every step)."""
    names = list(pdus)
    emu = Emulator(f"http://127.0.0.1:{free_port()}", tmp_path / "emulator.log", fake_systems(names))
    profiles = write_profiles(tmp_path / "profiles", emu, free_port())
    hosts = yaml.safe_load((profiles / "hosts.yaml").read_text())
    for h in hosts["hosts"]:
        h["pdu"] = pdus[h["name"]]
    (profiles / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    if limits:
        site = yaml.safe_load((profiles / "site.yaml").read_text())
        site["limits"] = limits
        (profiles / "site.yaml").write_text(yaml.safe_dump(site))
    return load_catalog(profiles)


def stand_ins(burn: Any) -> dict[StepName, Any]:
    """Every step a no-op, but the burn: `burn(call)` runs as follow_burnin."""
    steps: dict[StepName, Any] = {s.name: (lambda call: StepResult(message="stand-in")) for s in STEPS}
    steps[StepName.follow_burnin] = lambda call: (burn(call), StepResult(message="burnt"))[1]
    return steps


def run_power_fleet(
    tmp_path: Path,
    catalog: Catalog,
    admission: Admission | None,
    progress: Recorder,
    burn: Any,
    cancel: Cancel,
    store: StateStore,
) -> list[FleetRow]:
    def run_one(host: str, prog: Progress, cancel: Cancel) -> Summary:
        entry = catalog.host(host)
        profile = catalog.profile_of(entry)
        steps = stand_ins(burn)
        try:
            return run_host(
                store,
                RunRequest(host),
                prog,
                lambda run, facts: admission.guard(entry, profile, steps) if admission else steps,
                cancel,
            )
        finally:
            if admission:
                admission.release(host)

    return run_fleet(sorted(catalog.hosts), run_one, progress, tmp_path / "logs", None, cancel)


def stamp(row: Any, edge: str) -> float:
    return float(((row.evidence or {}).get("facts") or {})[ADMISSION_FACT][edge])


def intervals(store: StateStore, host: str, first: str, last: str) -> list[tuple[float, float]]:
    """[admitted at `first`, released at the end of `last`] of each completed span in the host's
    runs; without admission stamps (an unguarded run), the steps' own journal times."""
    out = []
    for run in store.list_runs(host):
        rows = {r.step: r for r in store.steps(run.id) if r.outcome and str(r.outcome) == "ok"}
        if first in rows and last in rows:
            a, b = rows[first], rows[last]
            if ADMISSION_FACT in ((a.evidence or {}).get("facts") or {}):
                out.append((stamp(a, "admitted_at"), stamp(b, "released_at")))
            elif b.ended_at is not None:
                out.append((a.started_at.timestamp(), b.ended_at.timestamp()))
    return out


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, d in edges:
        now += d
        peak = max(peak, now)
    return peak
