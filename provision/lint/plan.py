"""Lint of a profile's drives and burn-in plans: every kind of hardware tested, nothing absent
tested, destructive tests only where a drive class allows them. Pure."""

from __future__ import annotations

from collections import Counter

from provision.lint.finding import Findings
from provision.model.profile import BurninPlan, DriveInterface, DriveRole, Profile, Suite
from provision.model.yamlfile import Document


def check(p: Profile, doc: Document, out: Findings) -> None:
    _storage(p, doc, out)
    for plan_name in ("quick", "acceptance"):
        _plan(p, getattr(p.burnin, plan_name), plan_name, doc, out)
    _coverage(p, doc, out)


def _storage(p: Profile, doc: Document, out: Findings) -> None:
    for i, d in enumerate(p.storage):
        if d.raid == "raid1" and d.count != 2:
            out.error(
                "storage.raid1", doc, ("storage", i, "count"), f"expected 2 drives for raid1, got {d.count}"
            )
        if d.role is DriveRole.boot and d.destructive_allowed:
            out.error(
                "storage.boot-destructive",
                doc,
                ("storage", i, "destructive_allowed"),
                "expected false: the boot mirror holds the OS and is never written by a test, got true",
            )
    if p.drives(DriveRole.boot) is None:
        out.warning(
            "storage.no-boot",
            doc,
            ("storage",),
            "the seed lists no boot drive for this class: the OS would have to go on a scratch drive, "
            "which the destructive NVMe tests must then leave alone",
        )


def _plan(p: Profile, plan: BurninPlan, name: str, doc: Document, out: Findings) -> None:
    loc = ("burnin", name, "suites")
    suites = [s.suite for s in plan.suites]
    for suite, n in Counter(suites).items():
        if n > 1:
            out.error("plan.duplicate", doc, loc, f"expected each suite once, got {suite} {n} times")
    scratch = p.drives(DriveRole.scratch)
    present = {
        Suite.cpu: True,
        Suite.memory: True,
        Suite.gpu: p.gpus is not None,
        Suite.nvme: scratch is not None and scratch.interface is DriveInterface.nvme,
        Suite.boot_disks: p.drives(DriveRole.boot) is not None,
    }
    for suite, there in present.items():
        if there and suite not in suites:
            severity_fn = out.error if name == "acceptance" else out.warning
            severity_fn(
                "plan.missing",
                doc,
                loc,
                f"expected a {suite} suite: the profile has the hardware, the {name} plan never tests it",
            )
    for i, spec in enumerate(plan.suites):
        if spec.suite in present and not present[spec.suite]:
            out.error(
                "plan.absent-hardware",
                doc,
                (*loc, i, "suite"),
                f"expected no {spec.suite} suite: the profile has no such hardware, got one",
            )
        if spec.options.get("destructive") is True and not (scratch and scratch.destructive_allowed):
            out.error(
                "plan.destructive",
                doc,
                (*loc, i, "options", "destructive"),
                "expected false: no scratch drive class allows destructive tests "
                "(storage[].destructive_allowed), got true",
            )


def _coverage(p: Profile, doc: Document, out: Findings) -> None:
    """The contract's coverage floors must be reachable by the acceptance plan itself: each names a
    suite (and the options) that must be in it. A class with GPUs or scratch drives whose contract
    holds no coverage for them gets a warning: time alone says little about how much was tested."""
    plan = p.burnin.acceptance
    cov = plan.coverage
    loc = ("burnin", "acceptance", "coverage")
    specs = {s.suite: s for s in plan.suites}
    scratch = p.drives(DriveRole.scratch)
    writes = Suite.nvme in specs and specs[Suite.nvme].options.get("destructive") is True
    # (field, its floor, the suite it needs, the hardware is there, a missing floor is worth a warning)
    needs = [
        ("memory_tested_pct", cov.memory_tested_pct, Suite.memory, True, True),
        ("gpu_memory_tested_pct", cov.gpu_memory_tested_pct, Suite.gpu, p.gpus is not None, True),
        ("scratch_written_pct", cov.scratch_written_pct, Suite.nvme, scratch is not None, writes),
        ("scratch_read_pct", cov.scratch_read_pct, Suite.nvme, scratch is not None, True),
        ("soak_together_min", cov.soak_together_min, Suite.soak, p.gpus is not None, True),
    ]
    for field, value, suite, hardware, worth in needs:
        if value is None:
            if hardware and worth and suite in specs:
                out.warning(
                    "contract.coverage",
                    doc,
                    loc,
                    f"expected a {field} floor: the acceptance plan runs {suite} but its contract holds "
                    "no coverage for it, got none",
                )
            continue
        why = (
            f"no {suite} suite in the acceptance plan"
            if suite not in specs
            else "no such hardware in the profile"
            if not hardware
            else None
        )
        if why:
            out.error(
                "contract.coverage", doc, (*loc, field), f"expected a floor the plan can reach, got {why}"
            )
    if cov.scratch_written_pct and Suite.nvme in specs and not writes:
        out.error(
            "contract.coverage",
            doc,
            (*loc, "scratch_written_pct"),
            "expected the nvme suite with options: {destructive: true} (only a write test writes), got none",
        )
    soak = specs.get(Suite.soak)
    if cov.soak_together_min and soak is not None and cov.soak_together_min * 60 > soak.duration_s:
        out.error(
            "contract.coverage",
            doc,
            (*loc, "soak_together_min"),
            f"expected at most the soak's own {soak.duration_s / 60:g} min, "
            f"got {cov.soak_together_min:g} min",
        )
