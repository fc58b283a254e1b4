"""Fleet admission's ledger in the store (provision.store.ledger), on both engines: a check-and-add
that holds across processes (two processes of three threads each hammering one key never hold more
than its limit, counted from a record they append to while holding), holds that a live ledger keeps
past their length, and the holds of a process killed with SIGKILL that stop counting once they
expire."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.model.errors import BadInput
from provision.store.state import StateStore
from tests.conftest import REPO
from tests.support.postgres import Server, postgres_or_skip
from tests.support.procs import stop_pid


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    with postgres_or_skip() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store lives: a state directory, or a URL of a fresh database (lease length 1 s)."""
    if request.param == "sqlite":
        return str(tmp_path / "state")
    server: Server = request.getfixturevalue("pg")
    return server.url(server.new_database(), tmp_path / "shared", extra="&lease_s=1")


HAMMER = """
import json, os, sys, threading, time
from pathlib import Path
from provision.store.state import StateStore
state, gate, record, limit = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
counts = {"acquired": 0, "refused": 0, "over": 0}
with StateStore.open(state) as store:
    ledger = store.ledger(hold_s=5)
    (gate / f"ready-{os.getpid()}").touch()
    while not (gate / "go").exists():
        time.sleep(0.01)

    def hammer(t: int) -> None:
        got, deadline = 0, time.monotonic() + 60
        for i in range(100_000):
            if got == 8 or time.monotonic() > deadline:
                return
            holder = f"{os.getpid()}-{t}-{i}"
            if not ledger.acquire("pdu:circle1-1", 1, limit, holder):
                counts["refused"] += 1
                time.sleep(0.002)
                continue
            os.write(fd, f"+ {holder}\\n".encode())  # after the hold is taken
            counts["acquired"] += 1
            got += 1
            if ledger.in_use("pdu:circle1-1") > limit:
                counts["over"] += 1
            time.sleep(0.005)
            os.write(fd, f"- {holder}\\n".encode())  # before it is given back
            ledger.release("pdu:circle1-1", holder)

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
print(json.dumps(counts))
"""


def _python(code: str, *args: str, out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )


def _wait(what: str, done: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_processes_hammering_one_key_never_hold_more_than_its_limit(state: str, tmp_path: Path) -> None:
    gate, record = tmp_path / "gate", tmp_path / "record.txt"
    gate.mkdir()
    StateStore.open(state).close()
    procs = [
        _python(HAMMER, state, str(gate), str(record), "2", out=tmp_path / f"p{i}.out") for i in range(2)
    ]
    try:
        _wait("both processes", lambda: len(list(gate.glob("ready-*"))) == 2)
        (gate / "go").touch()
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            stop_pid(p.pid)
    counts = [json.loads((tmp_path / f"p{i}.out").read_text().splitlines()[-1]) for i in range(2)]
    # A hold is recorded after it is taken and unrecorded before it is given back, and appends land
    # in the order they happen: the count of open records never exceeds the true count of holds.
    open_now, most = 0, 0
    for line in record.read_text().splitlines():
        open_now += 1 if line.startswith("+") else -1
        most = max(most, open_now)
    assert most <= 2 and open_now == 0
    assert [c["acquired"] for c in counts] == [24, 24]  # every thread got its eight turns
    assert sum(c["refused"] for c in counts) > 0  # six threads, room for two: they did contend
    assert sum(c["over"] for c in counts) == 0
    assert len(record.read_text().splitlines()) == 2 * sum(c["acquired"] for c in counts)
    with StateStore.open(state) as store:
        assert store.ledger().in_use("pdu:circle1-1") == 0


HOLDER = """
import sys, time
from provision.store.state import StateStore
with StateStore.open(sys.argv[1]) as store:
    assert store.ledger(hold_s=1).acquire("installs", 3, 5, "inferno-host-compute-1")
    print("held", flush=True)
    time.sleep(600)  # killed here, its hold still live
"""


def test_a_killed_holders_holds_stop_counting_once_expired_and_a_live_ones_do_not(
    state: str, tmp_path: Path
) -> None:
    out = tmp_path / "holder.out"
    with StateStore.open(state) as store:
        ledger = store.ledger(hold_s=1)
        assert ledger.acquire("installs", 1, 5, "inferno-host-compute-2")  # this live process's own
        proc = _python(HOLDER, state, out=out)
        try:
            _wait("the holder's hold", lambda: out.exists() and "held" in out.read_text())
            assert ledger.in_use("installs") == 4
            assert not ledger.acquire("installs", 2, 5, "inferno-host-compute-3")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            # Nobody renews the killed process's hold: it stops counting after one hold length.
            _wait("the killed holder's hold to expire", lambda: ledger.in_use("installs") == 1, timeout_s=10)
        finally:
            stop_pid(proc.pid)
        time.sleep(1.5)  # past the hold length: only the renewals keep this process's own hold
        assert ledger.in_use("installs") == 1
        assert ledger.acquire("installs", 4, 5, "inferno-host-compute-3")
        assert ledger.acquire("installs", 2, 5, "inferno-host-compute-3")  # replaces its own 4
        assert ledger.in_use("installs") == 3
        ledger.release("installs", "inferno-host-compute-2")
        assert ledger.in_use("installs") == 2
    with StateStore.open(state) as store:  # closing released every hold of the ledger's owner
        assert store.ledger().in_use("installs") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("k", -1, 5, "h"), "ledger amount: expected a finite number >= 0, got -1"),
        (("k", 1, float("nan"), "h"), "ledger limit: expected a finite number >= 0, got nan"),
        (("", 1, 5, "h"), "ledger: expected a key and a holder, got '' and 'h'"),
    ],
)
def test_bad_amounts_are_refused_with_one_line(
    tmp_path: Path, args: tuple[str, float, float, str], message: str
) -> None:
    with StateStore.open(tmp_path / "state") as store, pytest.raises(BadInput) as exc:
        store.ledger().acquire(*args)
    assert str(exc.value) == message
