"""The third-party GPU tools the gpu suite runs when its plan asks: gpu_burn (`gpu_burn: true`,
`gpu_burn_dir`) and NVIDIA DCGM's `dcgmi diag -r N --json` (`dcgm_level: N`). Their text is parsed
(burnin.gpu_parsers), never their exit code alone (gpu_burn exits 0 with faulty GPUs); a tool that
is missing, timed out or could not run is inconclusive, saying which.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

from burnin import gpu_parsers
from burnin.context import SuiteContext, ToolRun
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
        run = ctx.run_tool(
            "gpu.dcgm", ["dcgmi", "diag", "-r", str(level), "--json"], 3600, artifact="dcgm.json"
        )
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
                expected=f"dcgmi diag -r {level}: all pass",
                observed=observed,
                verdict=verdict,
                evidence=["gpu.dcgm"],
                source="burnin",
                required=not run.missing,  # no dcgmi on the host: optional, says so
            )
        )
    return out
