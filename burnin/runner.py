"""Adapter: one burn-in run. Writes, under the run directory:

    plan.json        the plan as given
    events.jsonl     the event log: one JSON object a line ({"t", "event", ...})
    telemetry.jsonl  the time series with phase markers
    inventory.json   the in-OS HardwareInventory
    artifacts/       every tool's raw output
    result.json      the RunResult (rewritten after each suite; "ended_at" is set when done)

Suites are modules `burnin.suites.<name>` with run(ctx) -> SuiteResult. This is the one place that
turns a suite's unexpected exception into an inconclusive result naming it.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List

from burnin import __version__
from burnin.context import SuiteContext
from burnin.inventory import collect_inventory
from burnin.schema import Finding, RunResult, SuiteResult, Verdict, to_dict
from burnin.telemetry import Telemetry
from burnin.tools import ToolRunner

# Suite name -> module. A suite whose module is absent on this host yields an inconclusive result.
SUITES: Dict[str, str] = {
    "cpu": "burnin.suites.cpu",
    "memory": "burnin.suites.memory",
    "nvme": "burnin.suites.nvme",
    "boot_disks": "burnin.suites.boot_disks",
    "soak": "burnin.suites.soak",
    "gpu": "burnin.suites.gpu",
}

EVENTS = "events.jsonl"
RESULT = "result.json"
TELEMETRY = "telemetry.jsonl"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class EventLog:
    def __init__(self, path: Path) -> None:
        self._fh = open(path, "a")  # noqa: SIM115 - open for the whole run, closed by close()
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"t": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def inconclusive(suite: str, why: str, started: float) -> SuiteResult:
    return SuiteResult(
        suite=suite,
        verdict=Verdict.INCONCLUSIVE,
        started_at=started,
        ended_at=time.time(),
        findings=[
            Finding(
                id=f"suite_ran:{suite}",
                check="suite_ran",
                component=suite,
                expected="the suite runs to the end",
                observed=why,
                verdict=Verdict.INCONCLUSIVE,
                source="burnin",
            )
        ],
        error=why,
    )


def interrupted(result: SuiteResult, cancelled: bool) -> SuiteResult:
    """A suite cancelled while it ran, or with a step that was cancelled or timed out, did not run to
    its end: a `suite_ran` finding says so, its error is set and its verdict is never better than
    inconclusive (a fail already seen stays fail)."""
    steps = [
        f"{e.id} {e.error}"
        for e in result.evidence
        if e.error and (e.error == "cancelled" or e.error.startswith("timed out"))
    ]
    if not cancelled and not steps:
        return result
    why = "; ".join((["the run was cancelled during the suite"] if cancelled else []) + steps[:3])
    if not any(f.id == f"suite_ran:{result.suite}" for f in result.findings):
        result.findings.append(
            Finding(
                id=f"suite_ran:{result.suite}",
                check="suite_ran",
                component=result.suite,
                expected="the suite runs to the end",
                observed=why,
                verdict=Verdict.INCONCLUSIVE,
                evidence=[e.id for e in result.evidence if e.error][:10],
                source="burnin",
            )
        )
    result.error = result.error or why
    result.verdict = Verdict.worst([result.verdict, Verdict.INCONCLUSIVE])
    return result


def _not_required(result: SuiteResult) -> SuiteResult:
    result.findings = [replace(f, required=False) for f in result.findings]
    return result


class Runner:
    def __init__(self, plan: Dict[str, Any], run_dir: Path) -> None:
        self.plan = plan
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()
        self.log = EventLog(run_dir / EVENTS)
        self.tools = ToolRunner(run_dir, self.log, self.stop)
        self.telemetry = Telemetry(run_dir / TELEMETRY, float(plan.get("sample_interval_s", 1.0)), self.log)
        self.result = RunResult(
            run_id=plan["run_id"],
            host=plan.get("host", ""),
            plan=plan,
            started_at=time.time(),
            ended_at=None,
            inventory={},
            telemetry=TELEMETRY,
            agent_version=__version__,
        )

    def _save(self) -> None:
        write_json_atomic(self.run_dir / RESULT, to_dict(self.result))

    def run(self) -> RunResult:
        write_json_atomic(self.run_dir / "plan.json", self.plan)
        self.log("run_start", run_id=self.plan["run_id"], pid=os.getpid(), suites=self._names())
        self.telemetry.start()
        try:
            self.telemetry.mark_phase("inventory")
            inv = collect_inventory(self.tools)
            self.result.inventory = inv.to_dict()
            write_json_atomic(self.run_dir / "inventory.json", self.result.inventory)
            self.log("inventory_done", gaps=sorted(inv.gaps))
            self._save()
            for spec in self.plan["suites"]:
                if self.stop.is_set():
                    self.result.suites.append(
                        inconclusive(spec["suite"], "the run was cancelled", time.time())
                    )
                    continue
                self.result.suites.append(self._run_suite(spec))
                self._save()
        finally:
            self.telemetry.mark_phase("end")
            self.telemetry.stop()
            self.result.ended_at = time.time()
            self._save()
            self.log("run_end", verdict=self.result.verdict.value)
            self.log.close()
        return self.result

    def _names(self) -> List[str]:
        return [s["suite"] for s in self.plan["suites"]]

    def _run_suite(self, spec: Dict[str, Any]) -> SuiteResult:
        name = spec["suite"]
        started = time.time()
        self.telemetry.mark_phase(name)
        self.log("suite_start", suite=name, duration_s=spec.get("duration_s", 0))
        ctx = SuiteContext(
            run_dir=self.run_dir,
            spec=spec,
            plan=self.plan,
            log=self.log,
            run_tool=self.tools,
            add_sampler=self.telemetry.add_sampler,
            mark_phase=self.telemetry.mark_phase,
            stop=self.stop,
            samples=self.telemetry.samples,
        )
        module_name = SUITES.get(name)
        if module_name is None:
            result = inconclusive(
                name, f"unknown suite {name!r} (known: {', '.join(sorted(SUITES))})", started
            )
        else:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                result = inconclusive(name, f"suite {name} is not available in this agent ({exc})", started)
            else:
                try:
                    result = interrupted(module.run(ctx), self.stop.is_set())
                except Exception as exc:  # the one boundary: a crashed suite proves nothing
                    self.log("suite_crashed", suite=name, traceback=traceback.format_exc())
                    result = inconclusive(name, f"suite {name} crashed: {exc!r}", started)
        if not spec.get("required", True):
            result = _not_required(result)
        self.log("suite_end", suite=name, verdict=result.verdict.value, error=result.error)
        return result
