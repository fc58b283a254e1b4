"""Pure: the burn-in agent's plan from a profile, a host and a plan name (quick | acceptance) or a
plan document. The controller derives `expect` (facts the agent checks) from the profile here, so
the agent never needs the profile itself.
"""

from __future__ import annotations

from typing import Any

from provision.agent.gpu_expect import gpu_expect
from provision.model.errors import BadInput
from provision.model.hosts import Host
from provision.model.profile import DriveInterface, DriveRole, Profile

PLAN_NAMES = ("quick", "acceptance")

# Per-suite options a plan gets unless it sets them. Quick plans are smoke tests: they cap the
# memory they take and the triad's repetitions so the whole run stays within minutes.
QUICK_OPTIONS: dict[str, dict[str, Any]] = {
    "memory": {"fraction": 0.25, "max_mib": 4096, "triad_ntimes": 5},
    "soak": {"memory_fraction": 0.1, "max_mib": 512},
}
ACCEPTANCE_OPTIONS: dict[str, dict[str, Any]] = {
    "memory": {"fraction": 0.9, "triad_ntimes": 20},
    "nvme": {"ramp_s": 10},
}

# A plan for a machine with no profile (`provision burnin --local` on a workstation or CI VM):
# every suite, short, and no expectations: only health and integrity are judged.
LOCAL_SUITES: dict[str, list[dict[str, Any]]] = {
    "quick": [
        {"suite": "cpu", "duration_s": 20},
        {"suite": "memory", "duration_s": 20},
        {"suite": "nvme", "duration_s": 10},
        {"suite": "boot_disks", "duration_s": 5},
        {"suite": "gpu", "duration_s": 10},
        {"suite": "soak", "duration_s": 10},
    ],
    "acceptance": [
        {"suite": "cpu", "duration_s": 3600},
        {"suite": "memory", "duration_s": 3600},
        {"suite": "nvme", "duration_s": 1800},
        {"suite": "boot_disks", "duration_s": 300},
        {"suite": "gpu", "duration_s": 3600},
        {"suite": "soak", "duration_s": 3600},
    ],
}


def peak_bandwidth_gbs(profile: Profile) -> float:
    """Theoretical DRAM peak: sockets x populated channels x configured MT/s x 8 bytes."""
    m = profile.memory
    return round(
        profile.cpu.sockets * m.populated_channels_per_socket * m.configured_mts_expected * 8 / 1000, 1
    )


def expect_from_profile(profile: Profile) -> dict[str, Any]:
    cpu, mem, acc = profile.cpu, profile.memory, profile.acceptance
    expect: dict[str, Any] = {
        "profile": profile.name,
        "cpu": {
            "model": cpu.model,
            "vendor": cpu.vendor,
            "sockets": cpu.sockets,
            "cores_per_socket": cpu.cores_per_socket,
            "threads_per_core": cpu.threads_per_core,
            "logical_cpus": cpu.logical_cpus,
            "base_mhz": cpu.base_mhz,
            "boost_mhz": cpu.boost_mhz,
            "temp_max_c": acc.cpu_temp_max_c,
        },
        "memory": {
            "total_gib": mem.total_gib,
            "dimm_count": mem.dimm_count,
            "dimm_size_gib": mem.dimm_size_gib,
            "type": mem.type,
            "ecc": mem.ecc,
            "configured_mts_allowed": list(mem.configured_mts_allowed),
            "peak_bandwidth_gbs": peak_bandwidth_gbs(profile),
            "triad_fail_below_pct": mem.triad_fail_below_pct,
            "triad_warn_below_pct": mem.triad_warn_below_pct,
            "edac_ce_max": acc.edac_ce_max,
            "edac_ue_max": acc.edac_ue_max,
        },
        "power": {
            # the soak runs CPUs and GPUs together; the CPUs at this share when the feed is short
            "soak_cpu_load_pct": profile.soak_cpu_load_pct,
            "continuous_w": profile.power.continuous_w,
            "expected_draw_w": profile.power.expected_draw_w,
        },
        "nvme": {"count": 0},
    }
    scratch = profile.drives(DriveRole.scratch)
    if scratch is not None and scratch.interface is DriveInterface.nvme:
        expect["nvme"] = {
            "count": scratch.count,
            "capacity_bytes": scratch.capacity_bytes,
            "pcie_gen": scratch.pcie_gen,
            "pcie_width": scratch.pcie_width,
            "spread_pct": acc.nvme_spread_pct,
            "destructive_allowed": scratch.destructive_allowed,
        }
    boot = profile.drives(DriveRole.boot)
    if boot is not None:
        expect["boot_disks"] = {
            # The suite counts the disks under / and /boot: every member of a mirror, else the one
            # disk the OS was written to.
            "count": boot.count if boot.raid else 1,
            "capacity_bytes": boot.capacity_bytes,
            "interface": boot.interface.value,
            "link_gbps": boot.link_gbps,
            "raid": boot.raid,
        }
    expect["gpus"] = gpu_expect(profile)  # the GPU suite owns these keys (burnin.gpu_verdicts)
    return expect


def _with_defaults(suites: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    defaults = QUICK_OPTIONS if name == "quick" else ACCEPTANCE_OPTIONS if name == "acceptance" else {}
    out = []
    for spec in suites:
        opts = {**defaults.get(spec["suite"], {}), **dict(spec.get("options", {}))}
        out.append({**spec, "required": spec.get("required", True), "options": opts})
    return out


def _with_dcgm_level(suites: list[dict[str, Any]], level: int) -> None:
    """The profile's `gpus.dcgm_diag_level` as the gpu suite's `dcgm_level`, unless the suite sets
    one. Acceptance only: a quick plan is a smoke test that must stay within minutes, and
    `dcgmi diag -r 3/4` alone runs for tens of minutes to hours, so quick runs no DCGM."""
    for spec in suites:
        if spec["suite"] == "gpu":
            spec["options"].setdefault("dcgm_level", level)


def profile_suites(profile: Profile, name: str) -> list[dict[str, Any]]:
    """The suites of the profile's plan `name` as the agent gets them: with the plan's default
    options and, for acceptance, the profile's DCGM level. For "acceptance" this is also the contract
    every run of a host of this profile is held to (provision/acceptance/validation/contract.py)."""
    suites = _with_defaults([s.model_dump(mode="json") for s in getattr(profile.burnin, name).suites], name)
    if profile.gpus is not None and name == "acceptance":
        _with_dcgm_level(suites, profile.gpus.dcgm_diag_level)
    return suites


def build_plan(
    run_id: str,
    host_name: str,
    plan: str | dict[str, Any],
    profile: Profile | None = None,
    host: Host | None = None,
) -> dict[str, Any]:
    """`plan` is "quick", "acceptance", or a plan document (a dict: at least `suites`). The
    profile supplies suites for a named plan and `expect`; a document's own `expect` wins."""
    if isinstance(plan, str):
        if plan not in PLAN_NAMES:
            raise BadInput(f"--plan: expected quick, acceptance or a plan FILE, got {plan!r}")
        if profile is not None:
            suites = profile_suites(profile, plan)
            interval: float = getattr(profile.burnin, plan).sample_interval_s
        else:
            suites, interval = _with_defaults([dict(s) for s in LOCAL_SUITES[plan]], plan), 1.0
        doc: dict[str, Any] = {}
    else:
        doc = dict(plan)
        suites = doc.get("suites")  # type: ignore[assignment]
        if not isinstance(suites, list) or not suites:
            raise BadInput(
                "plan file: suites: expected a non-empty list of {suite, duration_s}, got " + repr(suites)
            )
        suites = _with_defaults(suites, str(doc.get("name", "")))
        interval = float(doc.get("sample_interval_s", 1.0))
    expect = doc.get("expect") or (expect_from_profile(profile) if profile is not None else {})
    allow = list(doc.get("allow_destructive", []))
    wants_writes = any(s.get("options", {}).get("destructive") for s in suites)
    if wants_writes and host is not None and expect.get("nvme", {}).get("destructive_allowed"):
        allow += [d.model_dump(exclude_none=True, include={"serial", "wwn"}) for d in host.scratch_disks]
    return {
        "run_id": run_id,
        "host": host_name,
        "sample_interval_s": interval,
        "suites": suites,
        "expect": expect,
        "allow_destructive": [a for a in allow if a],
    }
