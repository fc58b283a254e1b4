"""The BMC event log across the burn-in: the mark taken before it, the entries after it, and the
findings they make (Critical fails, Warning warns, an unreadable log is one optional inconclusive).
Over the test Redfish server, whose tree is rewritten between the two reads as a BMC's SEL grows."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burnin.schema import Verdict
from provision.acceptance.eventlog import EVENT_LOG_FILE, event_log_document, event_log_findings
from provision.acceptance.validation import RunVerdict, run_verdict
from provision.bmc.credentials import Credentials
from provision.bmc.eventlog import LogEntry, LogMark, after, entries_since, entry_dicts, mark_of, take_mark
from provision.bmc.redfish import BmcClient, connect
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from provision.model.profile import Acceptance
from tests.conftest import PROFILES
from tests.support.expand_rig import ExpandService, expand_service
from tests.support.mockup import build_tree, write_tree

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)
SYS = "/redfish/v1/Systems/1"
SEL = f"{SYS}/LogServices/SEL"
Tree = dict[str, dict[str, Any]]


def entry(n: int, severity: str, message: str, created: str) -> dict[str, Any]:
    return {
        "@odata.id": f"{SEL}/Entries/{n}",
        "Id": str(n),
        "Name": f"Log Entry {n}",
        "EntryType": "SEL",
        "Severity": severity,
        "Created": created,
        "Message": message,
        "MessageId": "Event.1.0.Sensor",
    }


def with_event_log(tree: Tree, entries: list[dict[str, Any]], *, manager: bool = False) -> Tree:
    """The tree with a SEL (under the System, or only under its Manager) holding `entries`, and an OEM
    journal listed first that must not be taken for the event log."""
    tree = copy.deepcopy(tree)
    owner = "/redfish/v1/Managers/1" if manager else SYS
    sel = f"{owner}/LogServices/SEL"
    tree[owner]["LogServices"] = {"@odata.id": f"{owner}/LogServices"}
    tree[f"{owner}/LogServices"] = {
        "@odata.id": f"{owner}/LogServices",
        "Members": [{"@odata.id": f"{owner}/LogServices/Journal"}, {"@odata.id": sel}],
    }
    tree[f"{owner}/LogServices/Journal"] = {
        "@odata.id": f"{owner}/LogServices/Journal",
        "Id": "Journal",
        "LogEntryType": "Oem",
    }
    tree[sel] = {
        "@odata.id": sel,
        "Id": "SEL",
        "Name": "System Event Log",
        "LogEntryType": "SEL",
        "Entries": {"@odata.id": f"{sel}/Entries"},
        "Actions": {"#LogService.ClearLog": {"target": f"{sel}/Actions/LogService.ClearLog"}},
    }
    moved = [{**e, "@odata.id": e["@odata.id"].replace(SEL, sel)} for e in entries]
    tree[f"{sel}/Entries"] = {
        "@odata.id": f"{sel}/Entries",
        "Members@odata.count": len(moved),
        "Members": [{"@odata.id": e["@odata.id"]} for e in moved],
    }
    tree.update({e["@odata.id"]: e for e in moved})
    return tree


BOOT = [
    entry(1, "OK", "System AC power on", "2026-12-01T10:00:00+00:00"),
    entry(2, "Warning", "Fan 3 below lower non-critical threshold", "2026-12-01T10:05:00+00:00"),
]
CRITICAL = entry(3, "Critical", "Memory ECC uncorrectable error, P1-DIMMA1", "2026-12-01T14:00:00+00:00")
WARNING = entry(4, "Warning", "PSU 2 input voltage low", "2026-12-01T14:10:00+00:00")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ExpandService, Path]]:
    base = build_tree(PROFILE, HOST)
    mockup = write_tree(with_event_log(base, BOOT), tmp_path / "mockup")
    with expand_service(mockup, tmp_path) as svc:
        yield svc, mockup


def _client(svc: ExpandService) -> Any:
    bmc = Bmc(url=svc.url, credentials="env:UNUSED", auth="basic", attempts=2, retry_delay_s=0.01)
    return connect(bmc, credentials=Credentials("admin", "secret"))


def _mark(svc: ExpandService, *, clear: bool = False) -> LogMark:
    with _client(svc) as bmc, bmc.resources() as fetch:
        client: BmcClient = bmc
        return take_mark(fetch, None, clear=client.post_action if clear else None)


def _since(svc: ExpandService, mark: LogMark) -> tuple[list[LogEntry], str | None]:
    with _client(svc) as bmc, bmc.resources() as fetch:
        return entries_since(fetch, None, mark)


def _findings(mark: LogMark, entries: list[LogEntry], error: str | None) -> dict[str, Any]:
    doc = event_log_document(mark.to_dict(), entry_dicts(entries), error)
    return {f.id: f for f in event_log_findings(doc)}


def test_a_critical_entry_during_the_burnin_fails_and_a_warning_warns(
    served: tuple[ExpandService, Path],
) -> None:
    svc, mockup = served
    mark = _mark(svc)
    assert (mark.service, mark.last_id, mark.entries, mark.error) == (SEL, "2", 2, None)
    write_tree(with_event_log(build_tree(PROFILE, HOST), [*BOOT, CRITICAL, WARNING]), mockup)
    entries, error = _since(svc, LogMark.from_dict(mark.to_dict()))  # as the journal hands it back
    assert error is None and [e.id for e in entries] == ["3", "4"]
    found = _findings(mark, entries, error)
    crit, warn = found["bmc_event_log:sel:3"], found["bmc_event_log:sel:4"]
    assert (crit.verdict, crit.required, crit.evidence) == (Verdict.FAIL, True, [f"{SEL}/Entries/3"])
    assert crit.observed == (
        "Critical: Memory ECC uncorrectable error, P1-DIMMA1 (entry 3, created 2026-12-01T14:00:00+00:00)"
    )
    assert warn.verdict is Verdict.WARN and "PSU 2 input voltage low" in warn.observed
    assert run_verdict(list(found.values())) is RunVerdict.rejected
    assert "bmc_event_log:sel:2" not in found  # the Warning from before the mark is not the burn-in's


def test_a_quiet_log_passes_and_old_entries_are_not_judged_again(served: tuple[ExpandService, Path]) -> None:
    svc, mockup = served
    mark = _mark(svc)
    write_tree(
        with_event_log(build_tree(PROFILE, HOST), [*BOOT, entry(3, "OK", "OS boot", "2026-12-01T12:00:00Z")]),
        mockup,
    )
    entries, error = _since(svc, mark)
    found = _findings(mark, entries, error)
    assert [f.verdict for f in found.values()] == [Verdict.PASS]
    assert found["bmc_event_log:bmc:event-log"].observed == (
        "1 new entries since 2026-12-01T10:05:00+00:00, none Critical or Warning"
    )


def test_an_unreadable_log_is_one_optional_inconclusive_finding(tmp_path: Path) -> None:
    mockup = write_tree(with_event_log(build_tree(PROFILE, HOST), BOOT), tmp_path / "mockup")
    with expand_service(mockup, tmp_path, fail=[f"{SEL}/Entries=500"]) as svc:
        mark = _mark(svc)
        assert mark.error is not None and "HTTP 500" in mark.error
        entries, error = _since(svc, mark)
    found = list(event_log_findings(event_log_document(mark.to_dict(), entry_dicts(entries), error)))
    assert [(f.id, f.verdict, f.required) for f in found] == [
        ("bmc_event_log:bmc:event-log", Verdict.INCONCLUSIVE, False)
    ]
    assert found[0].observed.startswith("the event log could not be read: ")
    assert run_verdict([*found, _pass()]) is RunVerdict.accepted  # optional: it holds nothing back


def _pass() -> Any:
    from provision.acceptance.validation.common import finding

    return finding("x", "y", 1, 1, Verdict.PASS, source="os")


def test_a_bmc_without_any_event_log_says_so(tmp_path: Path) -> None:
    mockup = write_tree(build_tree(PROFILE, HOST), tmp_path / "mockup")
    with expand_service(mockup, tmp_path) as svc:
        mark = _mark(svc)
    assert mark.error == f"{SYS}: neither the System nor its Managers list an event log (SEL)"


def test_the_managers_log_is_read_where_the_system_has_none(tmp_path: Path) -> None:
    mockup = write_tree(with_event_log(build_tree(PROFILE, HOST), BOOT, manager=True), tmp_path / "mockup")
    with expand_service(mockup, tmp_path) as svc:
        mark = _mark(svc)
    assert (mark.service, mark.last_id) == ("/redfish/v1/Managers/1/LogServices/SEL", "2")


def test_clear_log_empties_the_log_and_every_later_entry_counts(served: tuple[ExpandService, Path]) -> None:
    svc, mockup = served
    mark = _mark(svc, clear=True)
    assert (mark.cleared, mark.last_id, mark.error) == (True, None, None)
    assert svc.requests("POST") == [f"{SEL}/Actions/LogService.ClearLog"]
    assert not (mockup / "Systems/1/LogServices/SEL/Entries/1").exists()
    write_tree(with_event_log(build_tree(PROFILE, HOST), [CRITICAL]), mockup)
    entries, _ = _since(svc, mark)
    assert [e.id for e in entries] == ["3"]


def test_the_profile_says_whether_to_clear() -> None:
    assert Acceptance().clear_event_log is False
    assert Acceptance(clear_event_log=True).clear_event_log is True


# -- the order of entries, pure --------------------------------------------------------------------


def _e(ident: str, created: str | None) -> LogEntry:
    return LogEntry(ident, created, "Critical", "m", None, f"/e/{ident}")


@pytest.mark.parametrize(
    ("before", "now", "new"),
    [
        # newest first (iDRAC) or oldest first: the timestamps order them
        ([_e("2", "2026-01-01T10:00:00Z"), _e("1", "2026-01-01T09:00:00Z")],
         [_e("3", "2026-01-01T11:00:00Z"), _e("2", "2026-01-01T10:00:00Z"), _e("1", "2026-01-01T09:00:00Z")],
         ["3"]),
        # the same second: the numeric id breaks the tie
        ([_e("7", "2026-01-01T10:00:00Z")],
         [_e("7", "2026-01-01T10:00:00Z"), _e("8", "2026-01-01T10:00:00Z")],
         ["8"]),
        # no timestamps, numeric ids
        ([_e("9", None)], [_e("9", None), _e("10", None)], ["10"]),
        # neither: what is listed after the marked entry
        ([_e("a", None)], [_e("a", None), _e("b", None)], ["b"]),
        # an empty log at the mark: everything after it is new
        ([], [_e("1", "2026-01-01T10:00:00Z")], ["1"]),
        # the log rotated (the marked entry is gone): newer by time still
        ([_e("5", "2026-01-01T10:00:00Z")], [_e("1", "2026-01-01T12:00:00Z")], ["1"]),
    ],
)  # fmt: skip
def test_entries_after_the_mark(before: list[LogEntry], now: list[LogEntry], new: list[str]) -> None:
    assert [e.id for e in after(mark_of("/sel", before), now)] == new


def test_a_run_without_a_mark_is_inconclusive_not_silent() -> None:
    mark = LogMark.from_dict(None)
    assert entries_since(lambda p: None, None, mark) == ([], "no event-log mark was taken before the burn-in")
    assert event_log_findings(None) == []  # a run collected before the event log was read at all


# -- the flow: the mark at `inspect`, journaled; the read at `collect`; the findings at `validate` ---


def test_the_flow_marks_at_inspect_and_judges_what_the_burnin_added(
    served: tuple[ExpandService, Path], store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.cli.progress import JsonProgress
    from provision.flow.burnin_steps import BurninSteps
    from provision.flow.engine import Cancel, StepCall, StepName, Waiter
    from provision.flow.hostenv import HostEnv, StepContext
    from provision.flow.install_steps import EVENT_LOG_MARK, InstallSteps

    svc, mockup = served
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")
    bmc = HOST.bmc.model_copy(update={"url": svc.url, "auth": "basic", "system": None, "retry_delay_s": 0.01})
    host = HOST.model_copy(update={"bmc": bmc})
    progress = JsonProgress(io.StringIO())
    env = HostEnv(
        store, host, PROFILE, PROFILE.timeouts, progress, CATALOG, "http://127.0.0.1:1", mockup, PROFILES
    )
    ctx = StepContext(env, store.create_run(host.name, "provision"))

    def call(step: StepName, facts: dict[str, Any]) -> StepCall:
        waiter = Waiter(host.name, step.value, progress, Cancel())
        return StepCall(host.name, ctx.run.id, step, facts, waiter, 1)

    facts = InstallSteps(ctx).inspect(call(StepName.inspect, {})).facts
    assert facts[EVENT_LOG_MARK]["last_id"] == "2" and facts[EVENT_LOG_MARK]["error"] is None
    write_tree(with_event_log(build_tree(PROFILE, HOST), [*BOOT, CRITICAL]), mockup)
    # `collect` after a resume: the mark comes from the journal's facts, as the engine hands them on
    BurninSteps(ctx)._bmc_after(call(StepName.collect, json.loads(json.dumps(facts))))
    doc = json.loads(ctx.store.get_document(ctx.run.id, EVENT_LOG_FILE))
    assert doc is not None and [e["id"] for e in doc["entries"]] == ["3"]
    assert [(f.id, f.verdict) for f in event_log_findings(doc)] == [("bmc_event_log:sel:3", Verdict.FAIL)]


def test_paged_entries_are_followed_through_the_cache_once_each() -> None:
    from provision.bmc.cache import ResourceCache
    from provision.bmc.eventlog import read_entries

    first, second = (
        entry(1, "OK", "a", "2026-12-01T10:00:00Z"),
        entry(2, "Critical", "b", "2026-12-01T11:00:00Z"),
    )
    docs: dict[str, dict[str, Any]] = {
        SEL: {"@odata.id": SEL, "Id": "SEL", "Entries": {"@odata.id": f"{SEL}/Entries"}},
        f"{SEL}/Entries": {"Members": [first], "Members@odata.nextLink": f"{SEL}/Entries?$skip=1"},
        f"{SEL}/Entries?$skip=1": {"Members": [{"@odata.id": second["@odata.id"]}]},
        second["@odata.id"]: second,
    }
    asked: list[str] = []

    def get(target: str) -> dict[str, Any] | None:
        asked.append(target)
        return docs.get(target)

    cache = ResourceCache(get, expand=False, workers=1)
    assert [(e.id, e.severity) for e in read_entries(cache, SEL)] == [("1", "OK"), ("2", "Critical")]
    assert asked == [SEL, f"{SEL}/Entries", f"{SEL}/Entries?$skip=1", second["@odata.id"]]


def test_report_run_dir_judges_the_event_log_kept_with_the_run(tmp_path: Path) -> None:
    """`provision report --run-dir` reads the run's eventlog.json as the flow does: a Critical entry
    logged during the burn-in rejects the run, with the BMC's message as the observation."""
    from tests.test_acceptance_contract import run_dir
    from tests.test_handoff_apply import provision

    d = run_dir(tmp_path)
    crit = {
        "id": "41",
        "severity": "Critical",
        "message": "PSU 3 input lost",
        "created": "2026-12-01T11:00:00Z",
    }
    (d / EVENT_LOG_FILE).write_text(json.dumps(event_log_document({"last_id": "40"}, [crit], None)))
    args = ["report", "--run-dir", str(d), "--profile", "circle-2-lust", "--format", "json"]
    res = provision(*args, state=tmp_path / "state")
    record = json.loads(res.stdout)
    found = {f["id"]: f for f in record["findings"]}["bmc_event_log:sel:41"]
    assert (res.exit_code, record["verdict"], found["verdict"]) == (1, "rejected", "fail")
    assert "PSU 3 input lost" in found["observed"]
