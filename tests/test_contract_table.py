"""Every check fails closed (issue #13, tests): for each check id the committed acceptance run makes,
its evidence missing, truncated, crashed or cancelled ends the check fail or inconclusive, never pass,
and the run is never accepted. The inputs are the run's own: each suite's result, the in-OS and the
pre-OS inventories, and the telemetry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from burnin.schema import Finding, Verdict
from provision.acceptance.validation import RunVerdict, run_verdict
from tests.support.bundle import Bundle

SUITES = ("cpu", "memory", "nvme", "boot_disks", "gpu", "soak")
MODES = ("missing", "truncated", "crashed", "cancelled")


def _suite_edit(name: str, mode: str) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        suites = b.result["suites"]
        s = next(x for x in suites if x["suite"] == name)
        if mode == "missing":
            suites.remove(s)
        elif mode == "truncated":  # the result was cut off: no figures, no findings, a second long
            s.update(measurements={}, findings=[], ended_at=s["started_at"] + 1)
        elif mode == "crashed":
            s.update(verdict="inconclusive", error=f"thread {name}-0 crashed: RuntimeError: boom")
        else:
            s.update(verdict="inconclusive", error="cancelled", ended_at=s["started_at"] + 30)

    return edit


def _inventory_edit(which: str, mode: str) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        if mode == "missing":
            if which == "pre":
                b.pre = None
            else:
                b.result["inventory"] = {}
            return
        inv = b.pre if which == "pre" else b.inos
        assert inv is not None
        for key, value in list(inv.items()):  # cut off, or the collector died: nothing but gaps
            if isinstance(value, list):
                inv[key] = []
            elif isinstance(value, int | float) and key != "collected_at":
                inv[key] = None
        for key in inv.get("system", {}):
            inv["system"][key] = None
        inv["gaps"] = {"inventory": f"collector {mode}"}

    return edit


def _telemetry_edit(mode: str) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        if mode == "missing":
            b.telemetry = None
        else:  # cut after its first samples; a crashed or cancelled sampler leaves a torn line
            assert b.telemetry is not None
            b.telemetry = b.telemetry[:2] + ([] if mode == "truncated" else ['{"t": 9, "v": {"gpu0.te'])

    return edit


INPUTS: dict[str, Callable[[str], Callable[[Bundle], None]]] = {
    **{f"suite:{n}": (lambda mode, n=n: _suite_edit(n, mode)) for n in SUITES},  # type: ignore[misc]
    "in-OS inventory": lambda mode: _inventory_edit("os", mode),
    "pre-OS inventory": lambda mode: _inventory_edit("pre", mode),
    "telemetry": _telemetry_edit,
}


def _findings(edit: Callable[[Bundle], None] | None = None) -> list[Finding]:
    b = Bundle()
    if edit is not None:
        edit(b)
    return b.findings()


def _passing(findings: list[Finding]) -> dict[str, set[str]]:
    """check id -> ids of its passing findings."""
    out: dict[str, set[str]] = {}
    for f in findings:
        if f.verdict is Verdict.PASS:
            out.setdefault(f.check, set()).add(f.id)
    return out


GOOD = _findings()


def _owned(source: str) -> set[str]:
    """The checks whose passing findings depend on `source`: those that stop passing without it."""
    before, after = _passing(GOOD), _passing(_findings(INPUTS[source]("missing")))
    return {c for c, ids in before.items() if not ids <= after.get(c, set())}


OWNED = {source: _owned(source) for source in INPUTS}


def test_the_good_run_is_accepted_and_every_check_it_makes_has_an_input() -> None:
    assert run_verdict(GOOD) is RunVerdict.accepted
    checks = {f.check for f in GOOD if f.verdict is Verdict.PASS}
    orphans = checks - set().union(*OWNED.values())
    assert not orphans, f"checks that still pass with every input missing in turn: {sorted(orphans)}"
    assert len(checks) > 40


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", list(INPUTS))
def test_each_check_fails_closed_when_its_input_goes_wrong(source: str, mode: str) -> None:
    findings = _findings(INPUTS[source](mode))
    assert run_verdict(findings) is not RunVerdict.accepted
    if mode in ("missing", "truncated"):
        still = {
            f.id
            for f in findings
            if f.check in OWNED[source] and f.verdict is Verdict.PASS and f.id in _ids_of(source)
        }
        assert not still, f"{source} {mode}: still passing: {sorted(still)}"


def _ids_of(source: str) -> set[str]:
    """The finding ids of the good run that `source` carries (a drive's check on another drive may
    rightly stay)."""
    after = {f.id for f in _findings(INPUTS[source]("missing")) if f.verdict is Verdict.PASS}
    return {f.id for f in GOOD if f.verdict is Verdict.PASS and f.check in OWNED[source]} - after


def test_a_check_that_passes_with_its_input_gone_is_caught() -> None:
    """The table's own sanity: a finding that ignores its input would be an orphan."""
    fake = Finding(
        id="always:node", check="always", component="node", expected="-", observed="-",
        verdict=Verdict.PASS, evidence=[], required=True, source="burnin",
    )  # fmt: skip
    checks = {f.check for f in [*GOOD, fake]}
    assert "always" in checks - set().union(*OWNED.values())


def _unused(_: Any) -> None:  # pragma: no cover - keeps the typing of INPUTS' lambdas honest
    return None
