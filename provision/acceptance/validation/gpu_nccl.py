"""nccl-tests' all-reduce judged again on the controller's side, from the agent's raw figures
(measurements["nccl"], burnin.suites.gpu_tools): any wrong value fails, fewer GPUs than the profile's
count fail, a bus bandwidth below `gpu_floors.busbw_min_gbs` fails. The agent judged the same figures
with the plan it was given; this holds the run to the profile whatever plan ran. Fails closed: figures
the profile asks for (a busbw floor, or `gpu_floors.nccl.install`) that are missing, incomplete, not
validated or not numbers are inconclusive and required; nccl-tests not installed is the optional
inconclusive, unless the profile had the kickstart install it. Pure.
"""

from __future__ import annotations

from typing import Any

from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.validation.common import finding
from provision.model.profile import Profile

EVIDENCE = ["gpu.nccl"]


def check_gpu_nccl(profile: Profile, suite: SuiteResult) -> list[Finding]:
    floors, gpus = profile.gpu_floors, profile.gpus
    if floors is None or gpus is None:
        return []
    floor, installed_by_us = floors.busbw_min_gbs, floors.nccl.install
    asked = floor is not None or installed_by_us
    want = f"all_reduce_perf over {gpus.count} GPUs: 0 wrong values" + (
        f", busbw >= {floor:g} GB/s" if floor is not None else ""
    )
    raw = suite.measurements.get("nccl")
    if not isinstance(raw, dict):
        if not asked:  # nothing in the profile depends on it; the agent's own finding says what ran
            return []
        return [_finding(want, "no all_reduce_perf figures reported", Verdict.INCONCLUSIVE, True)]
    if raw.get("installed") is False:
        # Optional, unless the kickstart installed it (gpu_floors.nccl.install): then the install broke.
        observed = "all_reduce_perf (nccl-tests) is not installed"
        return [_finding(want, observed, Verdict.INCONCLUSIVE, installed_by_us)]
    verdict, observed = _judge(raw, gpus.count, floor)
    return [_finding(want, observed, verdict, True)]


def _judge(raw: dict[str, Any], count: int, floor: float | None) -> tuple[Verdict, str]:
    wrong, ranks, busbw = raw.get("wrong"), raw.get("gpus"), raw.get("busbw_gbs")
    figures = f"{wrong} wrong values, {ranks} GPUs, busbw {busbw} GB/s"
    if isinstance(wrong, bool) or not isinstance(wrong, int):
        return Verdict.INCONCLUSIVE, f"#wrong not reported ({figures})"
    if wrong > 0:
        return Verdict.FAIL, figures
    why = _incomplete(raw)
    if why:
        return Verdict.INCONCLUSIVE, f"{why} ({figures})"
    if isinstance(ranks, bool) or not isinstance(ranks, int) or not ranks:
        return Verdict.INCONCLUSIVE, f"GPUs taking part not reported ({figures}), expected {count}"
    if ranks != count:
        return Verdict.FAIL, f"{figures}: expected {count} GPUs"
    if floor is None:
        return Verdict.PASS, f"{figures}; no busbw floor in the profile"
    if isinstance(busbw, bool) or not isinstance(busbw, (int, float)) or busbw != busbw:  # NaN too
        return Verdict.INCONCLUSIVE, f"busbw not reported ({figures})"
    return (Verdict.PASS if busbw >= floor else Verdict.FAIL), figures


def _incomplete(raw: dict[str, Any]) -> str | None:
    if raw.get("error"):
        return f"all_reduce_perf could not finish: {raw['error']}"
    if raw.get("complete") is not True:
        return "all_reduce_perf output incomplete (no closing average)"
    if raw.get("validated") is not True:
        return "all_reduce_perf ran without validation (#wrong N/A)"
    return None


def _finding(want: str, observed: str, verdict: Verdict, required: bool) -> Finding:
    return finding(
        "gpu_nccl_floor",
        "node",
        want,
        observed,
        verdict,
        source="burnin",
        evidence=EVIDENCE,
        required=required,
    )
