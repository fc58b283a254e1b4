"""Fleet admission (provision.flow.admission): every host advances at once; a step waits only for
the resource it needs. Proven from the journal: each guarded step's row carries when it was admitted
and when its holds ended, so what held a resource at once is counted from the state store, never
from timings.

- Power: hosts on one PDU never burn beyond its continuous budget; a host bigger than its PDU's
  whole budget fails at once; a waiting host says what it waits for; a cancel while waiting stops
  the host and releases nothing another host holds.
- Installs and the BMC pool: real steps up to the boot from disk against the lean sushy-emulator
  (every system behind one BMC address), with the fleet's installer stand-in over real HTTP.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provision.cli import main as cli
from provision.cli.app import App
from provision.cli.launch import LaunchOptions, launch
from provision.flow.admission import (
    ADMISSION_FACT,
    STEP_NEEDS,
    Admission,
    AdmissionRefused,
    LocalLedger,
    burn_peak_w,
    pdu_budgets,
)
from provision.flow.engine import Cancel, StepCall, StepName, StepResult
from provision.flow.steps import build_steps
from provision.flow.waits import Waiter
from provision.model.errors import BadInput, VerdictFailed
from provision.model.limits import Limits
from provision.pdu.meters import CircuitLoad
from provision.store.state import StateStore
from tests.support.admission_rig import Recorder, catalog_for, intervals, most_at_once, run_power_fleet
from tests.support.bmcrig import Emulator, emulator_argv, fake_systems
from tests.support.fleet_installer import Installers
from tests.support.flowrig import write_profiles
from tests.support.procs import free_port, running

PDU_A, PDU_B = "inferno-pdu-circle1-1", "inferno-pdu-circle1-2"
POWER_MSG = re.compile(r"^power: (\S+) at ([0-9.]+) of ([0-9.]+) kW \(this burn needs ([0-9.]+) kW\)$")


def test_hosts_on_one_pdu_never_burn_beyond_its_budget_and_a_host_too_big_for_its_pdu_fails(
    tmp_path: Path,
) -> None:
    hosts = {f"flow-node-{i}": PDU_A for i in range(1, 8)}
    hosts["flow-node-9"] = PDU_B  # its PDU is budgeted below one burn
    catalog = catalog_for(tmp_path, hosts, {"pdu_budget_w": {PDU_B: 700}})
    limits = catalog.site.limits
    feeds = ((h.pdu, catalog.profile_of(h)) for h in catalog.hosts.values())
    admission = Admission(limits, pdu_budgets(feeds, limits), poll_s=0.05)
    progress, cancel = Recorder(), Cancel()
    store = StateStore.open(tmp_path / "state")
    on_a = [h for h, p in hosts.items() if p == PDU_A]

    def burn(call: StepCall) -> None:
        # Each burn lasts until every host on PDU A has asked to burn: the hosts beyond the budget
        # must be seen waiting while the first ones burn.
        call.waiter.wait_for(
            "all hosts at start_burnin", lambda: progress.count("start_burnin") >= 8 or None, 60, 0.05
        )
        cancel.sleep(0.05)

    try:
        rows = run_power_fleet(tmp_path, catalog, admission, progress, burn, cancel, store)
        outcomes = {r.host: (r.outcome, r.failed_step) for r in rows}
        assert outcomes == {**{h: ("ok", None) for h in on_a}, "flow-node-9": ("failed", "start_burnin")}
        big = next(r for r in rows if r.host == "flow-node-9")
        assert f"exceeds the whole continuous budget of {PDU_B} (0.7 kW)" in big.message
        assert big.exit_code == AdmissionRefused.exit_code
        spans = [s for h in on_a for s in intervals(store, h, "start_burnin", "follow_burnin")]
        assert len(spans) == 7
        peak = burn_peak_w(catalog.profile_of(catalog.host("flow-node-1")))
        budget = admission.pdu_budget_w[PDU_A]
        assert budget // peak == 3  # the rig: three 760 W burns fit 2662 W, four do not
        assert most_at_once(spans) <= 3
        waits = [(h, s, w) for h, s, w in progress.waits if s == "start_burnin"]
        assert {h for h, _, _ in waits} and {h for h, _, _ in waits} <= set(on_a)
        for _, _, what in waits:
            m = POWER_MSG.match(what)
            assert m, what
            assert m.group(1) == PDU_A and float(m.group(3)) == 2.66 and float(m.group(4)) == 0.76
            assert float(m.group(2)) + 0.76 > 2.66  # it waited because the burn did not fit
        assert admission.ledger.in_use(f"pdu:{PDU_A}") == 0
    finally:
        store.close()


def test_cancel_while_waiting_for_power_stops_the_host_and_releases_nothing_another_holds(
    tmp_path: Path,
) -> None:
    catalog = catalog_for(
        tmp_path, {"flow-node-1": PDU_A, "flow-node-2": PDU_A}, {"pdu_budget_w": {PDU_A: 1000}}
    )
    limits = catalog.site.limits
    admission = Admission(
        limits,
        pdu_budgets(((h.pdu, catalog.profile_of(h)) for h in catalog.hosts.values()), limits),
        poll_s=0.05,
        report_every_s=0.05,
    )
    progress, cancel = Recorder(), Cancel()
    store = StateStore.open(tmp_path / "state")
    let_go, stopped, burning = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def burn(call: StepCall) -> None:
        burning.set()
        let_go.wait(60)  # the burning host keeps burning until the test has looked

    def on_wait(host: str, step: str, what: str) -> None:
        if step == "start_burnin" and burning.is_set():  # the other host is in its burn
            cancel.set("test")

    def on_finish(host: str, step: str, outcome: str) -> None:
        if step == "start_burnin" and outcome == "interrupted":
            seen["held"] = {h: admission.held(h) for h in ("flow-node-1", "flow-node-2")}
            seen["in_use"] = admission.ledger.in_use(f"pdu:{PDU_A}")
            stopped.set()
            let_go.set()

    progress.on_wait, progress.on_finish = on_wait, on_finish
    try:
        rows = run_power_fleet(tmp_path, catalog, admission, progress, burn, cancel, store)
        assert stopped.is_set()
        waiter = next(h for h, s, _ in progress.waits if s == "start_burnin")
        burner = next(h for h in ("flow-node-1", "flow-node-2") if h != waiter)
        # At the waiter's stop, the burner still held its burn, and the waiter held nothing.
        assert seen["held"] == {burner: [f"pdu:{PDU_A}"], waiter: []}
        assert seen["in_use"] == 760
        by_host = {r.host: r for r in rows}
        assert (by_host[waiter].outcome, by_host[waiter].failed_step) == ("interrupted", "start_burnin")
        assert by_host[burner].outcome == "interrupted"  # it stops at its next step
        run = store.list_runs(waiter)[-1]
        last = store.steps(run.id)[-1]
        assert (last.step, str(last.outcome)) == ("start_burnin", "failed") and "interrupted" in last.message
        assert admission.ledger.in_use(f"pdu:{PDU_A}") == 0  # the burner's hold ended with its run
    finally:
        let_go.set()
        store.close()


def test_ledger_checks_and_adds_atomically_and_a_fresher_pdu_reading_counts() -> None:
    ledger = LocalLedger()
    assert ledger.acquire("pdu:p", 760, 2000, "a") and ledger.acquire("pdu:p", 760, 2000, "b")
    assert not ledger.acquire("pdu:p", 760, 2000, "c")  # 2280 > 2000
    assert ledger.acquire("pdu:p", 760, 2000, "a")  # a holder asking again adds nothing
    assert ledger.in_use("pdu:p") == 1520
    ledger.release("pdu:p", "c")  # never held: nothing changes
    assert ledger.in_use("pdu:p") == 1520
    ledger.release("pdu:p", "a")
    assert ledger.in_use("pdu:p") == 760 and ledger.acquire("pdu:p", 760, 2000, "c")

    readings: dict[str, CircuitLoad] = {}
    now = [1000.0]
    admission = Admission(Limits(), {"p": 2000.0}, measured=readings.get, fresh_s=60, wall=lambda: now[0])
    assert admission._load("pdu:p") == 0
    readings["p"] = CircuitLoad("p", 1500.0, 990.0)  # fresh and above the estimate: it counts
    assert admission._load("pdu:p") == 1500
    assert not admission._try("pdu:p", 760, 2000, "h")  # 1500 measured + 760 > 2000
    readings["p"] = CircuitLoad("p", 100.0, 995.0)  # low: h fits, then counts on top of it
    assert admission._try("pdu:p", 760, 2000, "h") and admission._load("pdu:p") == 860
    now[0] = 1001.0
    readings["p"] = CircuitLoad("p", 50.0, 1000.5)  # h is in it, below the estimate: the estimate stands
    assert admission._load("pdu:p") == 760 and admission.ledger.in_use("pdu:p") == 760
    readings["p"] = CircuitLoad("p", 1000.0, 1000.5)  # above it (other loads): the reading stands
    assert admission._load("pdu:p") == 1000
    now[0] = 1061.0
    assert admission._load("pdu:p") == 760  # stale: the estimate alone
    admission.release("h")


def test_pdu_budget_is_the_smallest_feed_and_the_site_only_lowers_it(tmp_path: Path) -> None:
    catalog = catalog_for(
        tmp_path, {"flow-node-1": PDU_A, "flow-node-2": PDU_B}, {"pdu_budget_w": {PDU_B: 9999}}
    )
    feeds = [(h.pdu, catalog.profile_of(h)) for h in catalog.hosts.values()]
    budgets = pdu_budgets(feeds, catalog.site.limits)
    assert budgets == {PDU_A: pytest.approx(2662.4), PDU_B: pytest.approx(2662.4)}
    assert pdu_budgets(feeds, Limits(pdu_budget_w={PDU_A: 1500})) == {
        PDU_A: 1500,
        PDU_B: pytest.approx(2662.4),
    }


@contextmanager
def lean_fleet(tmp_path: Path, names: list[str]) -> Iterator[tuple[Path, Installers]]:
    """The hosts' systems on one lean emulator (one BMC address for all), with the installer
    stand-in; yields the profiles directory."""
    systems = fake_systems(names)
    port = free_port()
    emu = Emulator(f"http://127.0.0.1:{port}", tmp_path / "bmc" / "emulator.log", systems)
    profiles = write_profiles(tmp_path / "profiles", emu, free_port())
    (tmp_path / "hostkey.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE3m0uWvQqfC test\n")
    with running(emulator_argv(tmp_path / "bmc", systems, port, lean=True), log=emu.log, port=port):
        installers = Installers(
            tmp_path / "bmc" / "emulator-state" / "fakedriver.sqlite",
            tmp_path / "state" / "netboot",
            (tmp_path / "hostkey.pub").read_text(),
            {s.uuid: s.name for s in systems},
        )
        installers.start()
        try:
            yield profiles, installers
        finally:
            installers.stop.set()


AFTER_INSTALL = ("wait_ssh", "start_burnin", "follow_burnin", "collect", "validate", "report", "handoff")


def up_to_boot_disk(*args: Any) -> Any:
    real = build_steps(*args)
    for name in AFTER_INSTALL:
        real[StepName(name)] = lambda call: StepResult(message="stand-in", skipped=True)
    return real


def test_installs_and_bmc_requests_are_admitted_within_their_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["flow-node-1", "flow-node-2", "flow-node-3"]
    monkeypatch.setenv("FLOW_TEST_BMC", "admin:password")
    with lean_fleet(tmp_path, names) as (profiles, installers):
        app = App(profiles_dir=profiles, state_dir=tmp_path / "state")
        opts = LaunchOptions(
            as_json=True, plan="quick", log_dir=tmp_path / "logs", limits={"bmc_requests": 1, "installs": 2}
        )
        with pytest.raises(VerdictFailed):  # the stand-ins judge nothing: finished, not accepted
            launch(app, names, opts, up_to_boot_disk, fleet=True)
    assert installers.installs == 3
    store = StateStore.open(tmp_path / "state")
    try:
        installs = [s for h in names for s in intervals(store, h, "pxe_boot", "wait_install")]
        assert len(installs) == 3 and most_at_once(installs) <= 2
        bmc = [
            s
            for h in names
            for step in ("inspect", "pxe_boot", "boot_disk")
            for s in intervals(store, h, step, step)
        ]
        assert len(bmc) == 9 and most_at_once(bmc) == 1  # one BMC address, one request at a time
        logs = "".join((tmp_path / "logs" / f"{h}.log").read_text() for h in names)
        assert "waiting for BMC 127.0.0.1:" in logs and "1 of 1 requests in flight" in logs
    finally:
        store.close()
    assert '"summary"' in capsys.readouterr().out


def test_a_resumed_burn_is_counted_at_once_and_a_waiting_host_goes_after_it(tmp_path: Path) -> None:
    """After a controller restart, follow_burnin continues a burn already under way on the host: it
    takes its hold without waiting (even past the budget), and a new burn waits for it to end."""
    catalog = catalog_for(
        tmp_path, {"flow-node-1": PDU_A, "flow-node-2": PDU_A}, {"pdu_budget_w": {PDU_A: 1000}}
    )
    limits = catalog.site.limits
    admission = Admission(
        limits, pdu_budgets([(PDU_A, catalog.profile_of(catalog.host("flow-node-1")))], limits)
    )
    progress, cancel = Recorder(), Cancel()
    one, two = catalog.host("flow-node-1"), catalog.host("flow-node-2")
    profile = catalog.profile_of(one)
    held_while: list[float] = []

    def call(host: str, step: StepName) -> StepCall:
        return StepCall(
            host, "run", step, {}, Waiter(host, step.value, progress, cancel), attempt=2, after_cut=True
        )

    def burning(c: StepCall) -> StepResult:
        held_while.append(admission.ledger.in_use(f"pdu:{PDU_A}"))
        return StepResult(message="burnt")

    guarded_one = admission.guard(one, profile, {StepName.follow_burnin: burning})
    guarded_two = admission.guard(two, profile, {StepName.follow_burnin: burning})
    admission.acquire(
        call("flow-node-1", StepName.start_burnin), STEP_NEEDS[StepName.start_burnin][0], one, profile
    )
    # flow-node-2 resumes its burn: counted beside flow-node-1's, past the 1000 W budget, no wait.
    result = guarded_two[StepName.follow_burnin](call("flow-node-2", StepName.follow_burnin))
    assert held_while == [1520] and not progress.waits
    assert set(result.facts[ADMISSION_FACT]) == {"admitted_at", "released_at"}
    assert admission.held("flow-node-2") == [] and admission.held("flow-node-1") == [f"pdu:{PDU_A}"]
    guarded_one[StepName.follow_burnin](call("flow-node-1", StepName.follow_burnin))
    assert admission.ledger.in_use(f"pdu:{PDU_A}") == 0


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"installs": 0}, "site.yaml:14: limits.installs: expected a value > 0, got 0"),
        ({"bmc_requests": "two"}, 'site.yaml:14: limits.bmc_requests: expected an integer, got "two"'),
        (
            {"pdu_budget_w": {PDU_A: -5}},
            f"site.yaml:15: limits.pdu_budget_w.{PDU_A}: expected a value > 0.0, got -5",
        ),
        ({"power": 3}, "limits.power: expected only known fields"),
    ],
)
def test_bad_site_limits_are_one_line(tmp_path: Path, limits: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput) as exc:
        catalog_for(tmp_path, {"flow-node-1": PDU_A}, limits)
    assert str(exc.value).endswith(message) or message in str(exc.value), str(exc.value)


def test_parallel_below_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profiles = catalog_for(tmp_path, {"flow-node-1": PDU_A}).directory
    with pytest.raises(SystemExit) as exc:
        cli.main(
            [
                "--profiles",
                str(profiles),
                "--state",
                str(tmp_path / "state"),
                "host",
                "--all",
                "--parallel",
                "0",
            ]
        )
    assert exc.value.code == 2
    assert "Invalid value for '--parallel': 0 is not in the range x>=1" in capsys.readouterr().err
