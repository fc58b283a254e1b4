"""The run's verdict from its findings: what accepts, what rejects, what blocks acceptance; and the
pre-OS inventory judged by its own numbering and gaps (a BMC that cannot expose a part is
inconclusive, never failed), on the compute host's fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from burnin.schema import Finding, Verdict
from provision.acceptance.validation import RunVerdict, run_verdict
from provision.model.profile import Waiver
from tests.support.bundle import HOST, Bundle, by_id, catalog, golden

P, F, W, INC = Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.INCONCLUSIVE


def _verdict(findings: list[Finding]) -> RunVerdict:
    return run_verdict(findings)


def test_good_host_is_accepted() -> None:
    findings = Bundle().findings()
    assert _verdict(findings) is RunVerdict.accepted
    assert len({f.id for f in findings}) == len(findings)


def test_a_failure_rejects() -> None:
    b = Bundle()
    b.inos["gpus"].pop()
    assert _verdict(b.findings()) is RunVerdict.rejected


def test_a_required_inconclusive_blocks_acceptance() -> None:
    b = Bundle()
    b.telemetry = None
    assert _verdict(b.findings()) is RunVerdict.inconclusive


def test_an_optional_inconclusive_does_not_block() -> None:
    b = Bundle()
    b.suite("cpu")["measurements"].pop("bogo_ops_per_s")
    findings = b.findings(golden=golden(930.0))
    assert _verdict(findings) is RunVerdict.accepted


def test_missing_in_os_inventory_is_inconclusive() -> None:
    b = Bundle()
    b.result["inventory"] = {}
    f = by_id(b.findings())["inventory_collected:os"]
    assert f.verdict is INC and f.required


def test_no_findings_proves_nothing() -> None:
    assert run_verdict([]) is RunVerdict.inconclusive


def test_pre_os_gaps_are_not_findings_but_mismatches_are() -> None:
    findings = Bundle().findings()
    pre = [f for f in findings if f.id.endswith("@redfish")]
    assert pre and all(f.verdict is not INC and not f.required for f in pre)


@pytest.mark.parametrize("listed", ["none", "without_serials"])
def test_drives_the_bmc_cannot_expose_are_inconclusive_not_failed(listed: str) -> None:
    b = Bundle()
    assert b.pre is not None
    if listed == "none":
        b.pre["drives"] = []
        b.pre["gaps"] = {"storage": "/redfish/v1/Systems/1: neither Storage nor SimpleStorage is exposed"}
    else:
        b.pre["drives"] = [{**d, "serial": None, "wwn": None} for d in b.pre["drives"]]
        b.pre["gaps"] = {"storage": "only SimpleStorage is exposed: no drive protocol, serial or WWN"}
    findings = b.findings()
    crosschecks = [f for f in findings if f.source == "crosscheck" and f.check.startswith("drive_")]
    assert [(f.id, f.verdict, f.required) for f in crosschecks] == [("drive_seen_by_bmc:node", INC, False)]
    assert b.pre["gaps"]["storage"] in crosschecks[0].observed
    if listed == "none":  # (SimpleStorage's missing protocols are the inspection's own matter)
        assert _verdict(findings) is RunVerdict.accepted


def test_drives_missing_from_a_bmc_that_exposes_storage_still_fail() -> None:
    b = Bundle()
    assert b.pre is not None
    b.pre["drives"] = b.pre["drives"][1:]
    missing = [f for f in b.findings() if f.check == "drive_seen_by_bmc"]
    assert missing and all(f.verdict is Verdict.FAIL and f.required for f in missing)


def test_profile_not_required_checks_stop_blocking_but_still_show_and_still_fail() -> None:
    b = Bundle()
    b.telemetry = [line for line in b.telemetry or [] if "temp" not in line and "power" not in line]
    base = catalog().profile_of(catalog().host(HOST))
    assert _verdict(b.findings(profile=base)) is RunVerdict.inconclusive
    waived = {"cpu_temperature": "no sensor in a VM", "peak_power": "no meter in a VM"}
    waivers = tuple(Waiver(check=c, reason=r) for c, r in waived.items())
    lab = base.model_copy(update={"acceptance": base.acceptance.model_copy(update={"not_required": waivers})})
    findings = b.findings(profile=lab)
    for check, why in waived.items():
        shown = [f for f in findings if f.check == check]
        assert shown and all(not f.required and f.waived == why for f in shown), shown
    still = [f for f in findings if f.verdict is INC and f.required]
    assert _verdict(findings) is (RunVerdict.inconclusive if still else RunVerdict.accepted), still
    b2 = Bundle()
    b2.inos["gpus"].pop()
    lab2 = base.model_copy(
        update={
            "acceptance": base.acceptance.model_copy(
                update={"not_required": (Waiver(check="gpu_count", reason="waived"),)}
            )
        }
    )
    assert _verdict(b2.findings(profile=lab2)) is RunVerdict.rejected  # a failure is never waived


def test_dimms_the_bmc_does_not_expose_are_inconclusive_not_failed() -> None:
    b = Bundle()
    assert b.pre is not None
    b.pre["dimms"] = []
    b.pre["gaps"] = {"memory": "/redfish/v1/Systems/1: no Memory members (DIMMs not exposed)"}
    dimm = [f for f in b.findings() if f.source == "crosscheck" and f.check.startswith("dimm_")]
    assert [(f.id, f.verdict, f.required) for f in dimm] == [("dimm_seen_by_bmc:node", INC, False)]
    b2 = Bundle()  # without the gap, a DIMM the BMC does not list still fails
    assert b2.pre is not None
    b2.pre["dimms"] = b2.pre["dimms"][1:]
    missing = [f for f in b2.findings() if f.check == "dimm_seen_by_bmc"]
    assert len(missing) == 1 and missing[0].verdict is Verdict.FAIL and missing[0].required


def _no_storage(tree: dict[str, Any]) -> None:
    tree["/redfish/v1/Systems/1"].pop("Storage")


def _move_dimm_channel(tree: dict[str, Any]) -> None:
    dimm = next(d for p, d in tree.items() if "/Memory/" in p and d.get("CapacityMiB"))
    dimm["MemoryLocation"]["Channel"] = next(
        d["MemoryLocation"]["Channel"] for p, d in tree.items() if "/Memory/" in p and d is not dimm
        and d.get("CapacityMiB") and d["MemoryLocation"]["Socket"] == dimm["MemoryLocation"]["Socket"]
    )  # fmt: skip


def _renumber_sockets_from_0(tree: dict[str, Any]) -> None:
    for p, d in tree.items():
        if "/Memory/" in p and "MemoryLocation" in d:
            d["MemoryLocation"]["Socket"] -= 1


CHANNELS = "memory_channels_per_socket:node@redfish"
PRE_OS_CASES: list[tuple[str, Any, str, Verdict, str]] = [
    # Redfish numbers sockets from 1 (the mockup, as BMCs do), the OS from 0: both judged alike.
    ("channels, sockets from 1", None, CHANNELS, P, "socket 1: 12, socket 2: 12"),
    ("channels, sockets from 0", _renumber_sockets_from_0, CHANNELS, P,
     "socket 0: 12, socket 1: 12"),
    ("channels, two DIMMs on one channel", _move_dimm_channel, CHANNELS, F,
     "socket 1: 11, socket 2: 12"),
    ("boot drives seen", None, "boot_drive_count:node@redfish", P, "2"),
    # A BMC that exposes no storage at all has not shown that the drives are missing.
    ("no storage exposed", _no_storage, "boot_drive_count:node@redfish", INC, "(not reported)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "edit", "fid", "verdict", "observed"), PRE_OS_CASES, ids=[c[0] for c in PRE_OS_CASES]
)
def test_a_pre_os_inventory_is_judged_by_its_own_numbering_and_gaps(
    name: str, edit: Any, fid: str, verdict: Verdict, observed: str
) -> None:
    import copy

    from provision.acceptance.validation.spec import check_inventory
    from provision.bmc.inventory import collect_inventory
    from tests.support.mockup import Faults, Style, build_tree

    host = catalog().host("inferno-host-compute-1")
    profile = catalog().profile_of(host)
    tree = copy.deepcopy(build_tree(profile, host, Style.supermicro, Faults()))
    if edit:
        edit(tree)
    inv = collect_inventory(lambda path: tree.get(path.rstrip("/")))
    found = {f.id: f for f in check_inventory(profile, inv, host)}
    assert (found[fid].verdict, found[fid].observed) == (verdict, observed), found[fid]
