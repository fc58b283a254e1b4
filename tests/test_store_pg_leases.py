"""Host leases on the shared PostgreSQL store (provision.store.lease), against a real server: a
second holder sees who holds the host and until when, a working holder keeps its lease by renewing
it, two processes racing for one host get it once, and a killed holder's hosts are taken over once
its lease expires: another controller resumes each from its journal, so no destructive step runs
twice on a host."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.model.errors import BadInput, HostLocked
from provision.store import lease
from provision.store.pgconnection import PgConnection
from provision.store.state import RunStatus, StateStore
from tests.conftest import REPO
from tests.support.postgres import Server, postgres_or_skip
from tests.support.procs import stop_pid
from tests.test_state import HOST, _start_holder, _wait

HOLDER_RE = r"pid (\d+) on \S+ \([0-9a-f]{6}\)"


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    with postgres_or_skip() as server:
        yield server


def _url(pg: Server, tmp_path: Path, lease_s: float) -> str:
    return pg.url(pg.new_database(), tmp_path / "shared", extra=f"&lease_s={lease_s}")


def _lease(store: StateStore) -> lease.Lease | None:
    conn = store._conn
    assert isinstance(conn, PgConnection)
    return lease.current_lease(conn, HOST)


def test_a_second_holder_sees_the_holder_and_the_expiry(pg: Server, tmp_path: Path) -> None:
    url = _url(pg, tmp_path, 30)
    with StateStore.open(url) as store, StateStore.open(url) as other:
        with store.host_lock(HOST):
            held = _lease(other)
            assert held is not None
            assert re.fullmatch(HOLDER_RE, held.holder) and f"on {socket.gethostname()} " in held.holder
            with pytest.raises(HostLocked) as exc, other.host_lock(HOST):
                pass
            assert (
                str(exc.value)
                == f"{HOST} is locked by {held.holder} until {held.expires} (another provision run?)"
            )
            with pytest.raises(HostLocked), store.host_lock(HOST):  # one process, a second claim: refused too
                pass
            with other.host_lock("inferno-host-master"):
                pass
        assert _lease(other) is None  # released on leaving the block
        with other.host_lock(HOST):
            pass
        with pytest.raises(BadInput, match="host: expected a host name"):
            store.host_lock("../etc").__enter__()


def test_a_working_holder_keeps_its_lease_past_its_length(pg: Server, tmp_path: Path) -> None:
    url = _url(pg, tmp_path, 1)
    with StateStore.open(url) as store, StateStore.open(url) as other, store.host_lock(HOST):
        first = _lease(other)
        time.sleep(2.5)  # two and a half lease lengths: only the renewals keep it
        later = _lease(other)
        assert first is not None and later is not None and later.holder == first.holder
        assert later.expires_at > first.expires_at
        with (
            pytest.raises(HostLocked, match=f"locked by {re.escape(first.holder)} until"),
            other.host_lock(HOST),
        ):
            pass


def test_two_controllers_race_for_one_host_and_exactly_one_wins(pg: Server, tmp_path: Path) -> None:
    url, gate = _url(pg, tmp_path, 30), tmp_path / "gate"
    gate.mkdir()
    StateStore.open(url).close()
    # tests.support.lockholder takes its state as a Path, as click's --state does: the URL folded.
    procs = [_start_holder(Path(url), gate, tmp_path / f"p{i}.log") for i in range(2)]
    try:
        _wait(lambda: len(list(gate.glob("ready-*"))) == 2, "both processes to be ready")
        (gate / "go").touch()
        _wait(lambda: any(p.poll() is not None for p in procs), "the loser to give up")
        losers = [p for p in procs if p.poll() is not None]
        winners = [p for p in procs if p.poll() is None]
        assert len(losers) == 1 and len(winners) == 1 and losers[0].returncode == 2
        assert list(gate.glob("won-*")) == [gate / f"won-{winners[0].pid}"]
        log = (tmp_path / f"p{procs.index(losers[0])}.log").read_text()
        assert re.fullmatch(
            rf"provision: {HOST} is locked by pid {winners[0].pid} on \S+ \([0-9a-f]{{6}}\) until \S+ "
            r"\(another provision run\?\)\n",
            log,
        )
        (gate / "release").touch()
        assert winners[0].wait(timeout=60) == 0
    finally:
        for p in procs:
            stop_pid(p.pid)
    with StateStore.open(url) as store, store.host_lock(HOST):
        pass


def test_a_killed_controllers_host_is_taken_over_after_its_lease(pg: Server, tmp_path: Path) -> None:
    url, gate = _url(pg, tmp_path, 2), tmp_path / "gate"
    gate.mkdir()
    (gate / "go").touch()
    with StateStore.open(url) as store:
        dead_run = store.create_run(HOST, "provision")
        proc = _start_holder(Path(url), gate, tmp_path / "holder.log")
        try:
            _wait(lambda: (gate / f"won-{proc.pid}").exists(), "the holder to take the lease")
            with pytest.raises(HostLocked, match=f"locked by pid {proc.pid} on "), store.host_lock(HOST):
                pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            killed_at = time.monotonic()
            # Nobody renews now: the lease stands until it expires, then the next claim takes over.
            _wait(
                lambda: _lease(store) is not None and _claimable(store), "the lease to expire", timeout_s=10
            )
            assert time.monotonic() - killed_at < 5
            with store.host_lock(HOST):
                stale = store.interrupt_stale_runs(HOST)
                taken = _lease(store)
                assert taken is not None and f"pid {os.getpid()} " in taken.holder
            assert [(r.id, r.status) for r in stale] == [(dead_run.id, RunStatus.interrupted)]
        finally:
            stop_pid(proc.pid)


def _claimable(store: StateStore) -> bool:
    try:
        with store.host_lock(HOST):
            pass
    except HostLocked:
        return False
    return True


def test_an_expired_holder_cannot_renew_what_was_taken_over(pg: Server, tmp_path: Path) -> None:
    with StateStore.open(_url(pg, tmp_path, 30)) as store:
        conn = store._conn
        assert isinstance(conn, PgConnection)
        lease.claim(conn, HOST, "controller-a", 0.3)
        with pytest.raises(HostLocked, match="locked by controller-a until"):
            lease.claim(conn, HOST, "controller-b", 30)
        time.sleep(0.5)
        taken = lease.claim(conn, HOST, "controller-b", 30)
        assert lease.renew(conn, HOST, "controller-a", 30) is False
        lease.release(conn, HOST, "controller-a")  # not its lease any more: nothing happens
        assert lease.current_lease(conn, HOST) == taken


CONTROLLER = """
import os, sys, time
from pathlib import Path
from provision.model.errors import HostLocked
from provision.store.state import RunStatus, StateStore, StepOutcome
url, gate, hosts = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
todo = list(hosts)
with StateStore.open(url) as store:
    while todo:
        host = todo.pop(0)
        try:
            with store.host_lock(host):
                store.interrupt_stale_runs(host)  # under the lease: whoever ran them is gone
                run = store.latest_run(host, "provision")
                if run is not None and run.status is RunStatus.succeeded:
                    continue
                run = store.reopen_run(run.id) if run is not None else store.create_run(host, "provision")
                done = store.completed_steps(run.id)
                for step in ("install", "disk_write_test", "burnin"):
                    if step in done:
                        continue
                    store.step_started(run.id, step)
                    if step != "burnin":  # the destructive steps: each must happen once per host
                        store.add_event(host, step, {"pid": os.getpid()}, run.id)
                    store.step_finished(run.id, step, StepOutcome.ok)
                    if (gate / f"die-{host}-{step}").exists():
                        (gate / f"dying-{os.getpid()}").touch()
                        time.sleep(600)  # killed here, mid-run, its lease still live
                store.finish_run(run.id, RunStatus.succeeded)
        except HostLocked:
            todo.append(host)  # another controller has it: come back after its lease
            time.sleep(0.2)
"""


def test_a_killed_controllers_hosts_are_finished_by_another_without_repeats(
    pg: Server, tmp_path: Path
) -> None:
    url, gate = _url(pg, tmp_path, 2), tmp_path / "gate"
    gate.mkdir()
    hosts = [f"inferno-host-compute-{i}" for i in range(1, 5)]
    StateStore.open(url).close()
    (gate / f"die-{hosts[1]}-install").touch()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start(name: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.log", "wb") as out:
            return subprocess.Popen(
                [sys.executable, "-c", CONTROLLER, url, str(gate), *hosts],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    first = start("a")
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: (gate / f"dying-{first.pid}").exists(), "controller a to be mid-run on host 2")
        second = start("b")  # races a for the hosts it has not reached: each is claimed once
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert second.wait(timeout=120) == 0, (tmp_path / "b.log").read_text()
    finally:
        for p in (first, second):
            if p is not None:
                stop_pid(p.pid)
    with StateStore.open(url) as store:
        for host in hosts:
            assert [e.kind for e in store.events(host=host)] == ["install", "disk_write_test"], host
            runs = store.list_runs(host)
            assert [r.status for r in runs] == [RunStatus.succeeded], host
        taken_over = store.events(host=hosts[1])
        assert [e.payload["pid"] for e in taken_over] == [first.pid, second.pid]
