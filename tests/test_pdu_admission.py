"""The fleet's power gate with the PDU's measured load (provision.pdu.watch into
provision.flow.admission), against snmpsim serving recorded walks: a PDU already carrying load that
a burn does not fit beside holds the burn the estimate alone admits; a stale reading and a PDU that
never answers fall back to the estimate, and the waiting line says which. The hosts are the test
profile flow-loopback (a 760 W burn on a 2662 W feed: three fit a PDU by the estimate); every step
is a stand-in but the admission around it, run by the real fleet, host runner, engine and journal.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.flow.admission import Admission, pdu_budgets
from provision.flow.engine import Cancel, StepCall
from provision.model.catalog import Catalog
from provision.model.pdus import Pdu
from provision.pdu.watch import PduWatch, watch_pdus
from provision.store.state import StateStore
from tests.support.admission_rig import Recorder, catalog_for, intervals, most_at_once, run_power_fleet
from tests.support.snmpsim import Agent, silent_agent, snmpsim

PDU = "inferno-pdu-circle1-1"
# The walk tests/data/snmp/raritan-loaded.snmprec: the inlet carries 2410 W.
MEASURED = re.compile(
    rf"^power: {PDU} at 2\.41 of 2\.66 kW measured (\d+) s ago \(this burn needs 0\.76 kW\)$"
)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as a:
        yield a


@pytest.fixture(autouse=True)
def community(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan-loaded")


def site_pdu(port: int) -> Pdu:
    return Pdu.model_validate(
        {
            "name": PDU,
            "address": "127.0.0.1",
            "port": port,
            "mib": "raritan-pdu2",
            "snmp": {"version": "v2c", "community": "env:TEST_PDU_COMMUNITY"},
            "continuous_w": 4992,
            "timeout_s": 0.3,
            "retries": 0,
        }
    )


def fleet(tmp_path: Path, hosts: int) -> Catalog:
    return catalog_for(tmp_path, {f"flow-node-{i}": PDU for i in range(1, hosts + 1)})


def gate(catalog: Catalog, **kw: Any) -> Admission:
    limits = catalog.site.limits
    feeds = ((h.pdu, catalog.profile_of(h)) for h in catalog.hosts.values())
    return Admission(limits, pdu_budgets(feeds, limits), poll_s=0.05, **kw)


def burnt(store: StateStore, catalog: Catalog) -> list[tuple[float, float]]:
    return [s for h in catalog.hosts for s in intervals(store, h, "start_burnin", "follow_burnin")]


def test_a_pdu_carrying_load_holds_the_burn_the_estimate_alone_admits(tmp_path: Path, agent: Agent) -> None:
    catalog = fleet(tmp_path, 1)
    store = StateStore.open(tmp_path / "state")
    try:
        # The estimate alone: nothing burns on the PDU, the 760 W burn fits its 2662 W budget.
        alone = run_power_fleet(
            tmp_path / "alone", catalog, gate(catalog), Recorder(), lambda c: None, Cancel(), store
        )
        assert [r.outcome for r in alone] == ["ok"] and len(burnt(store, catalog)) == 1

        # The same fleet with the PDU read in the background, as `provision host --rack` runs it.
        with watch_pdus((site_pdu(agent.port),), {PDU}) as measured:
            assert measured is not None
            deadline = time.monotonic() + 30
            while (seen := measured(PDU)) is None or seen.load_w is None:
                assert time.monotonic() < deadline and (seen is None or seen.failed is None), seen
                time.sleep(0.05)
            assert seen.load_w == 2410.0
            progress, cancel = Recorder(), Cancel()
            progress.on_wait = lambda host, step, what: cancel.set("test: seen waiting")
            rows = run_power_fleet(
                tmp_path / "measured",
                catalog,
                gate(catalog, measured=measured),
                progress,
                lambda c: None,
                cancel,
                store,
            )
        assert [r.outcome for r in rows] == ["interrupted"]
        assert len(burnt(store, catalog)) == 1  # the second run never burnt
        (host, step, what), *_ = progress.waits
        assert (host, step) == ("flow-node-1", "start_burnin")
        assert MEASURED.match(what), what
    finally:
        store.close()


def test_a_stale_reading_falls_back_to_the_estimate(tmp_path: Path, agent: Agent) -> None:
    catalog = fleet(tmp_path, 1)
    watch = PduWatch((site_pdu(agent.port),))
    taken = watch.read_once(PDU)
    assert taken.load_w == 2410.0 and taken.failed is None
    assert taken.taken_at is not None
    later = taken.taken_at + 120  # two minutes on, no newer reading
    admission = gate(catalog, measured=watch.load, wall=lambda: later)
    entry = catalog.host("flow-node-1")
    assert admission.describe("power", entry, catalog.profile_of(entry)) == (
        f"power: {PDU} at 0 of 2.66 kW estimated: the last reading is 120 s old (older than 60 s) "
        "(this burn needs 0.76 kW)"
    )
    store = StateStore.open(tmp_path / "state")
    try:
        rows = run_power_fleet(tmp_path, catalog, admission, Recorder(), lambda c: None, Cancel(), store)
        assert [r.outcome for r in rows] == ["ok"] and len(burnt(store, catalog)) == 1
    finally:
        store.close()


def test_a_pdu_that_never_answers_falls_back_to_the_estimate_and_says_so(tmp_path: Path) -> None:
    catalog = fleet(tmp_path, 4)
    progress, cancel = Recorder(), Cancel()
    waited = threading.Event()

    def on_wait(host: str, step: str, what: str) -> None:
        if what.startswith("power:"):
            waited.set()

    def burn(call: StepCall) -> None:
        # Three burn until the fourth has said what it waits for: the estimate holds it.
        deadline = time.monotonic() + 30
        while not waited.is_set() and time.monotonic() < deadline:
            cancel.sleep(0.05)

    progress.on_wait = on_wait
    store = StateStore.open(tmp_path / "state")
    try:
        with silent_agent() as port:
            watch = PduWatch((site_pdu(port),))
            timed_out = watch.read_once(PDU)
            assert (timed_out.load_w, timed_out.taken_at) == (None, None)
            rows = run_power_fleet(
                tmp_path, catalog, gate(catalog, measured=watch.load), progress, burn, cancel, store
            )
        assert [r.outcome for r in rows] == ["ok"] * 4
        spans = burnt(store, catalog)
        assert len(spans) == 4 and most_at_once(spans) == 3
        powers = [what for _, _, what in progress.waits if what.startswith("power:")]
        assert powers and powers[0] == (
            f"power: {PDU} at 2.28 of 2.66 kW estimated: SNMP agent 127.0.0.1:{port}: no answer within "
            "0.3 s x 1 tries (address, port, community or v3 user wrong, or the PDU is down) "
            "(this burn needs 0.76 kW)"
        )
    finally:
        store.close()
