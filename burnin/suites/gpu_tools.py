"""The third-party GPU tools the gpu suite runs when its plan asks: gpu_burn (`gpu_burn: true`,
`gpu_burn_dir`), NVIDIA DCGM's `dcgmi diag -r N -p <the profile's limits> -j` (`dcgm_level: N`;
burnin.gpu_dcgm_params) and nccl-tests' all_reduce_perf (`nccl: true`, by default when the plan has
the profile's gpu_floors; burnin.gpu_nccl). Their text is parsed
(burnin.gpu_parsers), never their exit code alone (gpu_burn exits 0 with faulty GPUs); a tool that
is missing, timed out or could not run is inconclusive, saying which.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

from burnin import gpu_nccl, gpu_parsers
from burnin.context import SuiteContext, ToolRun
from burnin.gpu_dcgm_params import dcgm_argv
from burnin.schema import Evidence, Finding, SuiteResult, Verdict


def _gpu_burn(ctx: SuiteContext, opts: Dict[str, Any], secs: int) -> ToolRun:
    """Run gpu_burn in `gpu_burn_dir` (it reads compare.ptx from its CWD), started directly, never
    through `env -C`, so a missing gpu_burn or directory is reported as missing, not as env's exit."""
    argv = ["gpu_burn", "-tc", str(secs)]
    where = opts.get("gpu_burn_dir")
    if not where:
        return ctx.run_tool("gpu.gpu_burn", argv, secs + 120, artifact="gpu_burn.txt")
    if not os.path.isdir(str(where)):
        why = f"gpu_burn_dir {where} does not exist"
        return ToolRun(Evidence(id="gpu.gpu_burn", command=argv, error=why), "", "", missing=True)
    local = os.path.join(str(where), "gpu_burn")
    if os.access(local, os.X_OK):
        argv[0] = local
    return ctx.run_tool("gpu.gpu_burn", argv, secs + 120, artifact="gpu_burn.txt", cwd=Path(str(where)))


def third_party_findings(
    ctx: SuiteContext, opts: Dict[str, Any], exp: Dict[str, Any], result: SuiteResult
) -> List[Finding]:
    """The findings of gpu_burn and `dcgmi diag`, each run only when the plan's options ask."""
    out: List[Finding] = []
    if opts.get("gpu_burn"):
        secs = max(10, int(ctx.duration_s * float(opts.get("gpu_burn_share", 0.25))))
        run = _gpu_burn(ctx, opts, secs)
        result.evidence.append(run.evidence)
        want = exp.get("count")
        verdict, observed = gpu_parsers.parse_gpu_burn(run.stdout).verdict(
            int(want) if want is not None else None
        )
        if run.missing or run.timed_out or run.evidence.error:
            why = run.evidence.error or ("tool not found" if run.missing else "timed out")
            verdict = Verdict.INCONCLUSIVE
            observed = (
                "gpu_burn is not installed"
                if why.startswith("tool not found")
                else f"gpu_burn could not run: {why}"
            )
        out.append(
            Finding(
                id="gpu_burn:node",
                check="gpu_burn",
                component="node",
                expected="all GPUs OK, 0 errors",
                observed=observed,
                verdict=verdict,
                evidence=["gpu.gpu_burn"],
                source="burnin",
            )
        )
    level = int(opts.get("dcgm_level", 0) or 0)
    if level:
        # the profile's limits, not DCGM's per-SKU defaults (burnin.gpu_dcgm_params)
        run = ctx.run_tool("gpu.dcgm", dcgm_argv(level, exp), 3600, artifact="dcgm.json")
        result.evidence.append(run.evidence)
        verdict, observed = gpu_parsers.parse_dcgm_diag(run.stdout).verdict()
        if run.missing or run.timed_out:
            verdict, observed = (
                Verdict.INCONCLUSIVE,
                "dcgmi " + ("is not installed" if run.missing else "timed out"),
            )
        out.append(
            Finding(
                id="gpu_dcgm_diag:node",
                check="gpu_dcgm_diag",
                component="node",
                expected=f"dcgmi diag -r {level}: all pass at the profile's limits",
                observed=observed,
                verdict=verdict,
                evidence=["gpu.dcgm"],
                source="burnin",
                required=not run.missing,  # no dcgmi on the host: optional, says so
            )
        )
    if opts.get("nccl", "pcie_floor_pct" in exp):
        out.append(nccl_finding(ctx, exp, result))
    return out


def nccl_finding(ctx: SuiteContext, exp: Dict[str, Any], result: SuiteResult) -> Finding:
    """nccl-tests' all_reduce_perf over every GPU: wrong values and the bus bandwidth floor
    (`busbw_min_gbs`). Not installed: an optional inconclusive that says so."""
    gpus = int(exp.get("count") or 0) or 1
    run = ctx.run_tool("gpu.nccl", gpu_nccl.argv(gpus), 900, artifact="all_reduce_perf.txt")
    result.evidence.append(run.evidence)
    report = gpu_nccl.parse_all_reduce(run.stdout)
    floor = exp.get("busbw_min_gbs")
    verdict, observed = report.verdict(None if floor is None else float(floor), gpus)
    if run.missing:
        verdict, observed = Verdict.INCONCLUSIVE, "all_reduce_perf (nccl-tests) is not installed"
    elif (run.timed_out or run.evidence.error) and verdict is not Verdict.FAIL:
        verdict, observed = (
            Verdict.INCONCLUSIVE,
            f"all_reduce_perf could not finish: {run.evidence.error or 'timed out'}",
        )
    # The raw figures, judged again by the controller (provision.acceptance.validation.gpu_nccl).
    result.measurements["nccl"] = {
        "installed": not run.missing,
        "complete": bool(report.rows) and report.avg_busbw is not None,
        "validated": bool(report.rows)
        and all(r.wrong_out is not None and r.wrong_in is not None for r in report.rows),
        "error": run.evidence.error or ("timed out" if run.timed_out else None),
        "busbw_gbs": report.peak_busbw,
        "avg_busbw_gbs": report.avg_busbw,
        "wrong": report.wrong,
        "gpus": report.ranks,
    }
    want = "0 wrong values" + (f", busbw >= {float(floor):g} GB/s" if floor is not None else "")
    return Finding(
        id="gpu_nccl_allreduce:node",
        check="gpu_nccl_allreduce",
        component="node",
        expected=f"all_reduce_perf -g {gpus}: {want}",
        observed=observed,
        verdict=verdict,
        evidence=["gpu.nccl"],
        source="burnin",
        # not installed: optional, unless the profile had the kickstart install it (`gpu_floors.nccl`)
        required=not run.missing or bool(exp.get("nccl_installed")),
    )
