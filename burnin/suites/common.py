"""What every suite shares: collecting findings/evidence/measurements, the suite verdict rule, and
the judgements that recur (a tool that could not run, EDAC deltas, kernel-log hardware errors,
temperatures and clocks over the suite's phase).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from burnin.context import SuiteContext, ToolRun
from burnin.hostio import KernelLog, edac_deltas, edac_snapshot
from burnin.parse_tools import scan_kernel_log
from burnin.schema import Evidence, Finding, SuiteResult, Verdict, make_finding
from burnin.tools import sha256_file


def suite_verdict(findings: List[Finding]) -> Verdict:
    """Worst of the required findings; a failed optional check only warns. No required finding at
    all proves nothing: INCONCLUSIVE."""
    required = [f.verdict for f in findings if f.required]
    if not required:
        return Verdict.INCONCLUSIVE
    verdict = Verdict.worst(required)
    if verdict is Verdict.PASS and any(f.verdict is Verdict.FAIL for f in findings if not f.required):
        return Verdict.WARN
    return verdict


class Report:
    """A suite's findings, evidence and measurements as it goes."""

    def __init__(self, suite: str) -> None:
        self.suite = suite
        self.started = time.time()
        self.findings: List[Finding] = []
        self.evidence: List[Evidence] = []
        self.measurements: Dict[str, Any] = {}
        self.error: Optional[str] = None

    def add(
        self,
        check: str,
        component: str,
        expected: str,
        observed: str,
        verdict: Verdict,
        evidence: Optional[List[str]] = None,
        required: bool = True,
    ) -> Finding:
        f = make_finding(check, component, expected, observed, verdict, "burnin", evidence or [], required)
        self.findings.append(f)
        return f

    def keep(self, run: ToolRun) -> ToolRun:
        self.evidence.append(run.evidence)
        return run

    def cannot_run(self, run: ToolRun) -> Optional[str]:
        """Why the tool produced no judgeable output (missing, timeout, crash), else None."""
        ev = run.evidence
        if run.missing or run.timed_out or ev.error:
            return ev.error or "could not run"
        return None

    def thread_crashed(self, component: str, tb: str) -> None:
        """A worker thread died: its part is untested, so an inconclusive finding for that part with
        the traceback's last line, the whole traceback as evidence, and the suite's error set."""
        last = (tb.strip().splitlines() or ["unknown exception"])[-1]
        ev_id = f"{self.suite}.thread.{component}"
        self.evidence.append(
            Evidence(id=ev_id, command=[f"thread {component}"], excerpt=tb[-4000:], error=last)
        )
        self.add(
            "suite_thread",
            component,
            "the worker thread for this part runs to the end",
            "crashed: " + last,
            Verdict.INCONCLUSIVE,
            [ev_id],
        )
        self.error = self.error or f"a {self.suite} worker thread crashed ({component}): {last}"

    def result(self) -> SuiteResult:
        verdict = suite_verdict(self.findings)
        if self.error and verdict in (Verdict.PASS, Verdict.WARN):
            verdict = Verdict.INCONCLUSIVE  # a suite that could not run to its end never passes
        return SuiteResult(
            suite=self.suite,
            verdict=verdict,
            started_at=self.started,
            ended_at=time.time(),
            measurements=self.measurements,
            findings=self.findings,
            evidence=self.evidence,
            error=self.error,
        )


def start_thread(rep: Report, component: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
    """Start one of a suite's worker threads (a drive, a memtester instance, a soak half). Any exception
    in it is caught and recorded against `component` (Report.thread_crashed), never lost with the thread:
    the suite then cannot pass with that part untested. The caller joins the thread."""

    def body() -> None:
        try:
            target(*args)
        except BaseException:
            rep.thread_crashed(component, traceback.format_exc())

    th = threading.Thread(target=body, name=f"{rep.suite}:{component}", daemon=True)
    th.start()
    return th


class HealthWatch:
    """EDAC counters and the kernel log across a suite's phase."""

    def __init__(self) -> None:
        self.edac_before = edac_snapshot()
        self.klog = KernelLog()

    def judge(self, rep: Report, ctx: SuiteContext, ecc_expected: bool, edac: bool = True) -> None:
        ev_id = f"{rep.suite}.health"
        after = edac_snapshot()
        klog_lines = self.klog.read_new()
        self.klog.close()
        hw_errors = scan_kernel_log(klog_lines)
        rep.evidence.append(
            Evidence(
                id=ev_id,
                command=["read /sys/devices/system/edac/mc", "read /dev/kmsg"],
                excerpt="\n".join(hw_errors[-10:]),
                error=self.klog.error,
            )
        )
        if self.klog.error:
            rep.add(
                "kernel_hw_errors",
                "host",
                "0 MCE/EDAC/AER lines",
                self.klog.error,
                Verdict.INCONCLUSIVE,
                [ev_id],
            )
        else:
            rep.add(
                "kernel_hw_errors",
                "host",
                "0 MCE/EDAC/AER lines during the suite",
                f"{len(hw_errors)} of {len(klog_lines)} new kernel log lines"
                + (": " + hw_errors[0] if hw_errors else ""),
                Verdict.FAIL if hw_errors else Verdict.PASS,
                [ev_id],
            )
        if not edac:
            return
        if self.edac_before is None or after is None:
            rep.add(
                "edac_errors",
                "memory",
                "EDAC CE/UE deltas of 0",
                "no EDAC memory controllers exposed by the kernel",
                Verdict.INCONCLUSIVE,
                [ev_id],
                required=ecc_expected,
            )
            return
        moved = edac_deltas(self.edac_before, after)
        rep.measurements["edac_deltas"] = moved
        ce_max = int(ctx.expect("memory").get("edac_ce_max", 0))
        ue_max = int(ctx.expect("memory").get("edac_ue_max", 0))
        ue = sum(d["ue"] for n, d in moved.items() if n.startswith("mc") and "/" not in n)
        ce = sum(d["ce"] for n, d in moved.items() if n.startswith("mc") and "/" not in n)
        observed = ", ".join(f"{n}: +{d['ce']} CE +{d['ue']} UE" for n, d in moved.items()) or "no change"
        verdict = Verdict.FAIL if ue > ue_max or ce > ce_max else Verdict.PASS
        rep.add(
            "edac_errors", "memory", f"CE delta <= {ce_max}, UE delta <= {ue_max}", observed, verdict, [ev_id]
        )


def inventory(ctx: SuiteContext) -> Dict[str, Any]:
    """The run's in-OS inventory (the runner writes it before the first suite)."""
    try:
        data = json.loads((ctx.run_dir / "inventory.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inventory_evidence(rep: Report, ctx: SuiteContext, tool_id: str, command: List[str]) -> List[str]:
    """Evidence for a finding that rests on the run's inventory: the tool's artifact and its sha256."""
    if not any(e.id == tool_id for e in rep.evidence):
        art = f"artifacts/{tool_id}.log"
        path = ctx.run_dir / art
        digest = sha256_file(path) if path.is_file() else None
        rep.evidence.append(
            Evidence(id=tool_id, command=command, artifact=art if digest else None, sha256=digest)
        )
    return [tool_id]


def phase_series(ctx: SuiteContext, prefix: str, since: float) -> List[float]:
    return [v for _, v in ctx.samples(prefix, since)]


def judge_temperatures(
    rep: Report, ctx: SuiteContext, prefix: str, limit_c: Optional[float], component: str
) -> None:
    temps = phase_series(ctx, prefix, rep.started)
    if not temps:
        rep.add(
            "temperature_max",
            component,
            f"<= {limit_c} °C" if limit_c else "a temperature sensor",
            f"no {prefix}* sensor sampled",
            Verdict.INCONCLUSIVE,
            required=False,
        )
        return
    peak = max(temps)
    rep.measurements[component + "_temp_max_c"] = peak
    if limit_c is None:
        rep.add(
            "temperature_max",
            component,
            "no limit in the plan",
            f"{peak:.1f} °C",
            Verdict.PASS,
            required=False,
        )
        return
    verdict = Verdict.PASS if peak <= limit_c else Verdict.FAIL
    rep.add("temperature_max", component, f"<= {limit_c:g} °C", f"{peak:.1f} °C", verdict)
