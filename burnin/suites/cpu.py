"""CPU suite: stress-ng on every logical CPU with --verify; metrics from its YAML; clocks and
temperatures from the run's telemetry; MCE/EDAC from the kernel log and EDAC counters.

Verdict rules: stress-ng exit 2 or any `fail:` line -> fail; exit 3/4/7, a crash, a timeout or
missing metrics -> inconclusive; clocks below base under load -> warn; over the temperature policy
-> fail.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from burnin.context import SuiteContext, ToolRun
from burnin.hostio import online_cpus
from burnin.parse_tools import STRESS_NG_EXIT, parse_stressng_log, parse_stressng_yaml
from burnin.schema import Verdict
from burnin.suites.common import (
    HealthWatch,
    Report,
    inventory,
    inventory_evidence,
    judge_temperatures,
    phase_series,
)

SUITE = "cpu"
CPU_TEMP_PREFIXES = ("temp.k10temp", "temp.coretemp", "temp.zenpower")


def stress_ng_verdict(
    rc: Optional[int],
    fail_lines: List[str],
    error_lines: Sequence[str] = (),
    completion: Optional[str] = None,
) -> Verdict:
    """stress-ng's exit code read with its meaning, and never alone: a `fail:` line fails the run; an
    `error:` line or an "unsuccessful run completed" (even with exit 0) proves nothing: inconclusive."""
    if fail_lines or rc == 2:
        return Verdict.FAIL
    if rc == 0 and not error_lines and completion != "unsuccessful":
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def judge_stress_ng(
    rep: Report, run: ToolRun, yaml_text: Optional[str], stressor: str, workers: int
) -> Dict[str, Any]:
    """Findings for one stress-ng run; returns its parsed metrics (empty when unparsable)."""
    ev = run.evidence.id
    why = rep.cannot_run(run)
    if why:
        rep.add(f"{stressor}_stress", "host", "stress-ng runs to the end", why, Verdict.INCONCLUSIVE, [ev])
        return {}
    log = parse_stressng_log(run.stderr + "\n" + run.stdout)
    rc = run.evidence.exit_code
    meaning = STRESS_NG_EXIT.get(rc if rc is not None else -1, f"exit {rc}")
    observed = f"exit {rc} ({meaning}), {len(log['fail_lines'])} fail: lines"
    if log["fail_lines"]:
        observed += ": " + log["fail_lines"][0]
    if log["error_lines"]:
        observed += f", {len(log['error_lines'])} error: lines: " + log["error_lines"][0]
    if log["completion"] == "unsuccessful":
        observed += ", unsuccessful run"
    rep.add(
        f"{stressor}_stress",
        "host",
        "exit 0, no fail:/error: lines, a successful run",
        observed,
        stress_ng_verdict(rc, log["fail_lines"], log["error_lines"], log["completion"]),
        [ev],
    )
    dispatched = log["dispatched"].get(stressor)
    rep.add(
        f"{stressor}_workers",
        "host",
        f"{workers} {stressor} workers",
        f"{dispatched} dispatched" if dispatched is not None else "no 'dispatching hogs' line",
        Verdict.PASS if dispatched == workers else Verdict.INCONCLUSIVE,
        [ev],
    )
    metrics: Dict[str, Any] = {}
    try:
        doc = parse_stressng_yaml(yaml_text or "")
        metrics = next((m for m in doc["metrics"] if m.get("stressor") == stressor), {})
    except ValueError as exc:
        rep.add(f"{stressor}_metrics", "host", "stress-ng YAML metrics", str(exc), Verdict.INCONCLUSIVE, [ev])
        return {}
    ops = metrics.get("bogo-ops")
    rep.add(
        f"{stressor}_metrics",
        "host",
        "bogo-ops > 0",
        f"{ops} bogo-ops" if ops is not None else f"no '{stressor}' entry in the YAML metrics",
        Verdict.PASS if isinstance(ops, (int, float)) and ops > 0 else Verdict.INCONCLUSIVE,
        [ev],
    )
    return metrics


def _inventory_checks(rep: Report, ctx: SuiteContext, online: int) -> None:
    exp = ctx.expect("cpu")
    cpus = inventory(ctx).get("cpus") or [{}]
    model = cpus[0].get("model")
    if exp.get("logical_cpus"):
        want = int(exp["logical_cpus"])
        rep.add(
            "logical_cpus",
            "cpu",
            str(want),
            str(online),
            Verdict.PASS if want == online else Verdict.FAIL,
            ["cpu.stress_ng"],  # stress-ng's dispatch line counts the online CPUs it loaded
        )
    if exp.get("model") and model is not None:
        ev = inventory_evidence(rep, ctx, "inventory.lscpu", ["lscpu", "-J"])
        rep.add(
            "cpu_model",
            "cpu",
            exp["model"],
            model,
            Verdict.PASS if model == exp["model"] else Verdict.FAIL,
            ev,
        )


def run(ctx: SuiteContext) -> Any:
    rep = Report(SUITE)
    opts = ctx.options
    online = online_cpus()
    workers = int(opts.get("workers", 0)) or online
    method = str(opts.get("method", "matrixprod"))
    duration = max(1, int(ctx.duration_s or 10))
    watch = HealthWatch()
    yaml_rel = "artifacts/cpu.stress_ng.yaml"
    argv = [
        "stress-ng", "--cpu", str(workers), "--cpu-method", method, "--verify", "--metrics",
        "--yaml", str(ctx.run_dir / yaml_rel), "--timeout", f"{duration}s",
    ]  # fmt: skip
    if opts.get("cpu_load_pct"):
        argv += ["--cpu-load", str(int(opts["cpu_load_pct"]))]
    ctx.log("progress", suite=SUITE, step="stress-ng", workers=workers, duration_s=duration)
    run_ = rep.keep(ctx.run_tool("cpu.stress_ng", argv, duration + 60))
    yaml_path = ctx.run_dir / yaml_rel
    metrics = judge_stress_ng(
        rep, run_, yaml_path.read_text() if yaml_path.is_file() else None, "cpu", workers
    )
    rep.measurements.update(
        {
            "workers": workers,
            "method": method,
            "duration_s": duration,
            "bogo_ops": metrics.get("bogo-ops"),
            "bogo_ops_per_s": metrics.get("bogo-ops-per-second-real-time"),
            "cpu_usage_per_instance_pct": metrics.get("cpu-usage-per-instance"),
        }
    )
    busy = phase_series(ctx, "cpu.busy_pct", rep.started)
    if busy:
        rep.measurements["cpu_busy_pct_avg"] = round(sum(busy) / len(busy), 1)
    _inventory_checks(rep, ctx, online)
    exp = ctx.expect("cpu")
    clocks = phase_series(ctx, "cpu.mhz_avg", rep.started)
    base = exp.get("base_mhz")
    if clocks:
        loaded = sorted(clocks)[len(clocks) // 2]  # the median resists the ramp at start and end
        rep.measurements["clock_mhz_median"] = loaded
        if base:
            rep.add(
                "clock_under_load",
                "cpu",
                f">= {base} MHz (base clock)",
                f"median {loaded:.0f} MHz",
                Verdict.PASS if loaded >= float(base) else Verdict.FAIL,
                required=False,
            )
    else:
        rep.add(
            "clock_under_load",
            "cpu",
            "sampled clocks",
            "no clock samples",
            Verdict.INCONCLUSIVE,
            required=False,
        )
    prefix = next((p for p in CPU_TEMP_PREFIXES if phase_series(ctx, p, rep.started)), CPU_TEMP_PREFIXES[0])
    judge_temperatures(rep, ctx, prefix, exp.get("temp_max_c"), "cpu")
    watch.judge(rep, ctx, bool(ctx.expect("memory").get("ecc")))
    return rep.result()
