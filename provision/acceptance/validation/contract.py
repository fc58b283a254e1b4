"""The acceptance contract: the minimum evidence a run must hold before it can be `accepted`,
whatever plan it ran. The contract is the profile's `burnin.acceptance` plan: each of its suites ran
for at least its `duration_s` with at least its evidence options (destructive writes, gpu_burn, a
DCGM level), and the run reached the plan's `coverage` floors (share of RAM tested, GPU memory tested
per GPU, bytes written and read per scratch drive, soak minutes with CPUs and GPUs loaded together).

A run short of it (a quick plan, a `--plan FILE`, a suite cut short) gets required inconclusive
`contract_*` findings, so its verdict is never `accepted`: it says "not an acceptance run: <what is
missing>" (`verdict_reason`). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.validation.common import finding, number, time_share
from provision.agent.plan import profile_suites
from provision.model.profile import Coverage, DriveRole, Profile

CONTRACT_PREFIX = "contract_"
SOURCE = "contract"
GIB = 1024**3

# Plan options that change what a suite proves: the run must have asked for at least as much.
BOOL_EVIDENCE = ("destructive", "gpu_burn")
LEVEL_EVIDENCE = ("dcgm_level",)


def check_contract(
    profile: Profile | None, planned: Sequence[dict[str, Any]], suites: Sequence[SuiteResult]
) -> list[Finding]:
    if profile is None:
        return [
            finding(
                "contract_profile",
                "node",
                "a hardware profile whose acceptance contract the run is held to",
                "no profile: health and integrity only, never an acceptance",
                Verdict.INCONCLUSIVE,
                source=SOURCE,
            )
        ]
    ran = {str(s.get("suite")): s for s in planned}
    by_name = {s.suite: s for s in suites}
    out = [_suite(spec, ran.get(spec["suite"]), by_name.get(spec["suite"])) for spec in contract(profile)]
    cov = profile.burnin.acceptance.coverage
    out += _memory(cov, by_name.get("memory"))
    out += _gpu_memory(profile, cov, by_name.get("gpu"))
    out += _scratch(profile, cov, by_name.get("nvme"))
    out += _soak(cov, by_name.get("soak"))
    return out


def contract(profile: Profile) -> list[dict[str, Any]]:
    """The contract's suites, as the agent gets them in an acceptance plan."""
    return profile_suites(profile, "acceptance")


def _suite(want: dict[str, Any], spec: dict[str, Any] | None, result: SuiteResult | None) -> Finding:
    name, need = str(want["suite"]), float(want["duration_s"])
    opts = {k: v for k, v in want.get("options", {}).items() if k in BOOL_EVIDENCE + LEVEL_EVIDENCE and v}
    expected = f"{name} for >= {need:g} s" + "".join(f", {k}={v}" for k, v in sorted(opts.items()))
    short: list[str] = []
    if spec is None and result is None:
        short.append("not run")
    else:
        asked = number((spec or {}).get("duration_s"))
        if asked is None or asked < need:
            short.append(f"planned {asked or 0:g} s of {need:g} s")
        if result is None:
            short.append("no result")
        else:
            took = result.ended_at - result.started_at
            if took < need * time_share(name):
                short.append(f"ran {took:.0f} s of {need:g} s")
        have = (spec or {}).get("options", {})
        short += [f"without {k}" for k in opts if k in BOOL_EVIDENCE and not have.get(k)]
        short += [
            f"{k} {have.get(k) or 0} below {opts[k]}"
            for k in opts
            if k in LEVEL_EVIDENCE and (number(have.get(k)) or 0) < (number(opts[k]) or 0)
        ]
    verdict = Verdict.INCONCLUSIVE if short else Verdict.PASS
    observed = "; ".join(short) if short else _took(spec, result)
    return finding(
        "contract_suite",
        f"suite:{name}",
        expected,
        observed,
        verdict,
        source=SOURCE,
        required=bool(want.get("required", True)),
    )


def _took(spec: dict[str, Any] | None, result: SuiteResult | None) -> str:
    took = f"{result.ended_at - result.started_at:.0f} s" if result else "?"
    return f"planned {(spec or {}).get('duration_s')} s, ran {took}"


def _floor(check: str, component: str, floor: float, got: float | None, what: str, why: str) -> Finding:
    """One coverage floor: `got` (a percentage) against `floor`; no figure is a gap, never a pass."""
    expected = f">= {floor:g}% {what}"
    if got is None:
        return finding(check, component, expected, why, Verdict.INCONCLUSIVE, source=SOURCE)
    verdict = Verdict.PASS if got >= floor else Verdict.INCONCLUSIVE
    return finding(check, component, expected, f"{got:.1f}% ({why})", verdict, source=SOURCE)


def _memory(cov: Coverage, suite: SuiteResult | None) -> list[Finding]:
    if cov.memory_tested_pct is None:
        return []
    m = suite.measurements if suite else {}
    tested, ram = number(m.get("tested_mib")), number(m.get("ram_mib"))
    if suite is None or tested is None or not ram:
        why = "no memory suite result" if suite is None else "tested_mib/ram_mib not reported"
        return [_floor("contract_memory_coverage", "memory", cov.memory_tested_pct, None, "of RAM", why)]
    pct = 100 * tested / ram
    why = f"{tested:,.0f} of {ram:,.0f} MiB in one verified pass"
    return [_floor("contract_memory_coverage", "memory", cov.memory_tested_pct, pct, "of RAM", why)]


def _gpu_memory(profile: Profile, cov: Coverage, suite: SuiteResult | None) -> list[Finding]:
    if cov.gpu_memory_tested_pct is None or profile.gpus is None:
        return []
    check, floor, what = "contract_gpu_memory_coverage", cov.gpu_memory_tested_pct, "of each GPU's memory"
    per_gpu = suite.measurements.get("per_gpu") if suite else None
    rows = [g for g in per_gpu if isinstance(g, dict)] if isinstance(per_gpu, list) else []
    out = []
    for g in rows:
        tested, total = number(g.get("tested_mib")), number(g.get("memory_total_mib"))
        comp = f"gpu:{g.get('index')}"
        if tested is None or not total:
            out.append(_floor(check, comp, floor, None, what, "tested_mib/memory_total_mib not reported"))
        else:
            why = f"{tested:,.0f} of {total:,.0f} MiB written and checked"
            out.append(_floor(check, comp, floor, 100 * tested / total, what, why))
    if len(rows) < profile.gpus.count:
        why = f"{len(rows)} of {profile.gpus.count} GPUs reported"
        out.append(_floor(check, "gpus", floor, None, what, why))
    return out


def _scratch(profile: Profile, cov: Coverage, suite: SuiteResult | None) -> list[Finding]:
    scratch = profile.drives(DriveRole.scratch)
    if scratch is None:
        return []
    per_drive = suite.measurements.get("per_drive") if suite else None
    drives = {k: v for k, v in (per_drive or {}).items() if isinstance(v, dict) and k.startswith("nvme:")}
    out = []
    for key, floor in (("written", cov.scratch_written_pct), ("read", cov.scratch_read_pct)):
        if floor is None:
            continue
        check, field = f"contract_scratch_{key}", f"{key}_bytes"
        what = f"of each scratch drive's {scratch.capacity_bytes / GIB:,.0f} GiB {key}"
        for comp, d in sorted(drives.items()):
            moved = number(d.get(field))
            if moved is None:
                out.append(_floor(check, comp, floor, None, what, f"{field} not reported"))
            else:
                pct = 100 * moved / scratch.capacity_bytes
                out.append(_floor(check, comp, floor, pct, what, f"{moved / GIB:,.2f} GiB"))
        if len(drives) < scratch.count:
            why = f"{len(drives)} of {scratch.count} scratch drives reported"
            out.append(_floor(check, "nvme", floor, None, what, why))
    return out


def _soak(cov: Coverage, suite: SuiteResult | None) -> list[Finding]:
    if cov.soak_together_min is None:
        return []
    check, expected = "contract_soak_together", f">= {cov.soak_together_min:g} min"
    together = number(suite.measurements.get("together_s")) if suite else None
    if together is None:
        why = "no soak result" if suite is None else "together_s not reported"
        return [finding(check, "soak", f"{expected} with CPUs and GPUs loaded together", why,
                        Verdict.INCONCLUSIVE, source=SOURCE)]  # fmt: skip
    ok = together / 60 >= cov.soak_together_min
    return [
        finding(
            check,
            "soak",
            f"{expected} with CPUs and GPUs loaded together",
            f"{together / 60:.1f} min",
            Verdict.PASS if ok else Verdict.INCONCLUSIVE,
            source=SOURCE,
        )
    ]


def shortfall(findings: Sequence[Finding]) -> list[Finding]:
    """The contract findings that keep a run from being an acceptance run."""
    return [
        f
        for f in findings
        if f.check.startswith(CONTRACT_PREFIX) and f.required and f.verdict is not Verdict.PASS
    ]
