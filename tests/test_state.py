from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provision.model.errors import BadInput, HostLocked, NotFound, StateError
from provision.store import db as statedb
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from tests.conftest import REPO
from tests.support.procs import stop_pid

HOST = "inferno-host-compute-1"


def test_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "s") as store:
        assert store.schema_version == statedb.SCHEMA_VERSION
    db = sqlite3.connect(tmp_path / "s" / statedb.DB_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_host_state_keeps_history(store: StateStore) -> None:
    assert store.get_host_state(HOST) is None
    store.set_host_state(HOST, HostState.inspected, "redfish inventory matched")
    store.set_host_state(HOST, HostState.burning_in)
    assert store.get_host_state(HOST) is HostState.burning_in
    assert str(HostState.burning_in) == "burning-in" and str(HostState.handed_off) == "handed-off"
    history = store.host_history(HOST)
    assert [(h.previous, h.state, h.reason) for h in history] == [
        (None, HostState.inspected, "redfish inventory matched"),
        (HostState.inspected, HostState.burning_in, ""),
    ]
    rows = store.list_hosts()
    assert [(r.name, r.state, r.last_run_id) for r in rows] == [(HOST, HostState.burning_in, None)]


def test_runs_are_sortable_and_filtered(store: StateStore) -> None:
    a = store.create_run(HOST, "provision")
    b = store.create_run(HOST, "burnin")
    c = store.create_run("inferno-host-master", "provision")
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{4}", a.id)
    assert len({a.id, b.id, c.id}) == 3
    assert [r.id for r in store.list_runs(HOST)] == [a.id, b.id]
    assert [r.id for r in store.list_runs(kind="provision")] == [a.id, c.id]
    assert store.latest_run(HOST) == b
    assert store.latest_run(HOST, "provision") == a
    assert store.latest_run("inferno-host-exper-1") is None
    assert {r.name: r.last_run_id for r in store.list_hosts()}[HOST] == b.id
    # Creating a run enrolls an unseen host without overwriting a known state.
    assert store.get_host_state("inferno-host-master") is HostState.enrolled
    done = store.finish_run(a.id, RunStatus.failed)
    assert done.status is RunStatus.failed and done.ended_at is not None
    assert store.get_run(b.id).status is RunStatus.running
    with pytest.raises(BadInput, match="expected succeeded, failed or interrupted, got running"):
        store.finish_run(b.id, RunStatus.running)
    with pytest.raises(NotFound, match="run: expected a known run id, got 'nope'"):
        store.get_run("nope")


def test_runs_left_running_by_a_dead_process_are_interrupted(store: StateStore) -> None:
    dead = store.create_run(HOST, "provision")
    token = store.issue_token(dead.id, HOST, ttl_s=300)
    other = store.create_run("inferno-host-master", "provision")
    with store.host_lock(HOST):
        stale = store.interrupt_stale_runs(HOST)
    assert [(r.id, r.status) for r in stale] == [(dead.id, RunStatus.interrupted)]
    assert store.get_run(other.id).status is RunStatus.running
    assert store.check_token(HOST, token) is None


def test_journal_records_attempts_and_completed_steps(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    store.step_started(run.id, "inspect")
    store.step_finished(run.id, "inspect", StepOutcome.ok, {"inventory": "inventory.json"}, "matched")
    store.step_started(run.id, "install")
    store.step_finished(run.id, "install", StepOutcome.failed, message="kickstart callback timed out")
    store.step_started(run.id, "install")
    store.step_finished(run.id, "gpu", StepOutcome.skipped, message="no GPUs in this profile")
    steps = store.steps(run.id)
    assert [(s.step, s.outcome) for s in steps] == [
        ("inspect", StepOutcome.ok),
        ("install", StepOutcome.failed),
        ("install", None),
        ("gpu", StepOutcome.skipped),
    ]
    assert steps[0].evidence == {"inventory": "inventory.json"} and steps[0].message == "matched"
    assert steps[2].ended_at is None
    assert store.completed_steps(run.id) == {"inspect", "gpu"}
    store.step_finished(run.id, "install", StepOutcome.ok)
    assert store.completed_steps(run.id) == {"inspect", "gpu", "install"}
    assert len(store.steps(run.id)) == 4  # the open attempt was closed, not duplicated


def test_events_filter(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    store.add_event(HOST, "power", {"action": "on"}, run.id)
    store.add_event(HOST, "callback", {"stage": "post"})
    store.add_event("inferno-host-master", "power", {"action": "off"})
    assert [e.payload for e in store.events(host=HOST)] == [{"action": "on"}, {"stage": "post"}]
    assert [e.kind for e in store.events(run_id=run.id)] == ["power"]
    assert [e.host for e in store.events(kind="power")] == [HOST, "inferno-host-master"]


def test_documents_are_files_with_their_digest(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    ref = store.put_document(run.id, "inventory.json", {"cpus": 384})
    raw = store.put_document(run.id, "dmesg.txt", b"edac: no errors\n")
    assert ref.path == store.state_dir / "runs" / run.id / "inventory.json"
    assert ref.path.read_bytes() == store.get_document(run.id, "inventory.json")
    assert b'"cpus": 384' in ref.path.read_bytes()
    assert raw.sha256 == hashlib.sha256(b"edac: no errors\n").hexdigest() and raw.size_bytes == 16
    assert [d.name for d in store.documents(run.id)] == ["inventory.json", "dmesg.txt"]
    assert not [p for p in ref.path.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    raw.path.write_bytes(b"tampered\n")
    with pytest.raises(StateError, match="got a file that changed since"):
        store.get_document(run.id, "dmesg.txt")
    with pytest.raises(BadInput, match=r"document name: expected .*, got '\.\./x'"):
        store.put_document(run.id, "../x", b"")
    with pytest.raises(NotFound, match=r"expected 'missing\.json' in run"):
        store.get_document(run.id, "missing.json")


def test_a_failed_step_keeps_what_it_collected(store: StateStore) -> None:
    run = store.create_run(HOST, "burnin")
    store.step_started(run.id, "gpu")
    store.put_document(run.id, "gpu-partial.json", {"samples": [1, 2]})
    store.step_finished(run.id, "gpu", StepOutcome.failed, {"document": "gpu-partial.json"}, "XID 79")
    store.finish_run(run.id, RunStatus.failed)
    with StateStore.open(store.state_dir) as again:
        assert again.get_document(run.id, "gpu-partial.json").startswith(b"{")
        assert again.steps(run.id)[0].evidence == {"document": "gpu-partial.json"}


def test_tokens_are_stored_hashed_and_checked(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    token = store.issue_token(run.id, HOST, ttl_s=300)
    assert store.check_token(HOST, token) == store.get_run(run.id)
    assert store.check_token("inferno-host-master", token) is None
    assert store.check_token(HOST, token + "x") is None
    dump = b"".join(p.read_bytes() for p in store.state_dir.glob("state.sqlite3*"))
    assert token.encode() not in dump
    assert hashlib.sha256(token.encode()).hexdigest().encode() in dump
    short = store.issue_token(run.id, HOST, ttl_s=0.05)
    time.sleep(0.2)
    assert store.check_token(HOST, short) is None
    store.revoke_tokens(run.id)
    assert store.check_token(HOST, token) is None
    other = store.create_run(HOST, "reinstall")
    third = store.issue_token(other.id, HOST, ttl_s=300)
    store.finish_run(other.id, RunStatus.succeeded)
    assert store.check_token(HOST, third) is None


def test_a_run_stopped_by_an_error_keeps_its_token_until_it_succeeds(store: StateStore) -> None:
    run = store.create_run(HOST, "provision")
    token = store.issue_token(run.id, HOST, ttl_s=300)
    stopped = store.finish_run(run.id, RunStatus.failed, keep_tokens=True)
    assert stopped.status is RunStatus.failed and stopped.ended_at is not None
    assert store.check_token(HOST, token) == stopped  # the install it started may still call back
    again = store.reopen_run(run.id)
    assert again.status is RunStatus.running and again.ended_at is None
    store.finish_run(run.id, RunStatus.succeeded)
    assert store.check_token(HOST, token) is None
    with pytest.raises(BadInput, match="expected a run that did not succeed, got succeeded"):
        store.reopen_run(run.id)


def test_threads_share_one_store(store: StateStore) -> None:
    run = store.create_run(HOST, "burnin")

    def work(n: int) -> None:
        for i in range(20):
            store.add_event(HOST, "sample", {"thread": n, "i": i}, run.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.events(run_id=run.id)) == 80


def _v1_database(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    db = statedb.connect(state_dir / statedb.DB_FILE)
    statedb.migrate(db, state_dir / statedb.DB_FILE, target=1)
    db.execute(
        "INSERT INTO runs (id, host, kind, status, started_at) VALUES "
        "('20261101T000000-beef', ?, 'provision', 'succeeded', '2026-11-01T00:00:00+00:00')",
        (HOST,),
    )
    db.execute(
        "INSERT INTO hosts (name, state, updated_at, last_run_id) VALUES "
        "(?, 'accepted', '2026-11-01T00:00:00+00:00', '20261101T000000-beef')",
        (HOST,),
    )
    db.close()


def test_an_older_database_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    state_dir = tmp_path / "old"
    _v1_database(state_dir)
    db = sqlite3.connect(state_dir / statedb.DB_FILE)
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'documents'").fetchone() is None
    db.close()
    with StateStore.open(state_dir) as store:
        assert store.schema_version == statedb.SCHEMA_VERSION
        assert store.get_host_state(HOST) is HostState.accepted
        assert store.latest_run(HOST) is not None
        ref = store.put_document("20261101T000000-beef", "report.json", {"verdict": "pass"})
        assert ref.size_bytes > 0


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    state_dir = tmp_path / "new"
    with StateStore.open(state_dir):
        pass
    db = sqlite3.connect(state_dir / statedb.DB_FILE)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(
        StateError, match=rf"expected schema version <= {statedb.SCHEMA_VERSION} \(this provision\), got 99"
    ):
        StateStore.open(state_dir)


def test_a_corrupt_database_is_one_line(tmp_path: Path) -> None:
    state_dir = tmp_path / "bad"
    state_dir.mkdir()
    (state_dir / statedb.DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match=r"state\.sqlite3: .*file is not a database"):
        StateStore.open(state_dir)


def test_lock_in_one_process_refuses_a_second_holder(store: StateStore) -> None:
    with store.host_lock(HOST):
        with pytest.raises(HostLocked) as exc, store.host_lock(HOST):
            pass
        assert re.fullmatch(
            rf"{HOST} is locked by pid {os.getpid()} since \S+ \(another provision run\?\)", str(exc.value)
        )
        with store.host_lock("inferno-host-master"):
            pass
    with store.host_lock(HOST):
        pass
    with pytest.raises(BadInput, match="host: expected a host name"):
        store.host_lock("../etc").__enter__()


def _start_holder(state_dir: Path, gate: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.lockholder", str(state_dir), HOST, str(gate)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )


def _wait(predicate: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_two_processes_race_for_one_host_and_exactly_one_wins(tmp_path: Path) -> None:
    state_dir, gate = tmp_path / "state", tmp_path / "gate"
    gate.mkdir()
    procs = [_start_holder(state_dir, gate, tmp_path / f"p{i}.log") for i in range(2)]
    try:
        _wait(lambda: len(list(gate.glob("ready-*"))) == 2, "both processes to be ready")
        (gate / "go").touch()
        # The loser exits while the winner still holds: the winner waits for "release".
        _wait(lambda: any(p.poll() is not None for p in procs), "the loser to give up")
        losers = [p for p in procs if p.poll() is not None]
        winners = [p for p in procs if p.poll() is None]
        assert len(losers) == 1 and len(winners) == 1
        assert losers[0].returncode == 2
        assert list(gate.glob("won-*")) == [gate / f"won-{winners[0].pid}"]
        log = (tmp_path / f"p{procs.index(losers[0])}.log").read_text()
        assert re.fullmatch(
            rf"provision: {HOST} is locked by pid {winners[0].pid} since \S+ \(another provision run\?\)\n",
            log,
        )
        (gate / "release").touch()
        assert winners[0].wait(timeout=60) == 0
    finally:
        for p in procs:
            stop_pid(p.pid)
    with StateStore.open(state_dir) as store, store.host_lock(HOST):
        pass  # released: the next run gets it


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    state_dir, gate = tmp_path / "state", tmp_path / "gate"
    gate.mkdir()
    (gate / "go").touch()
    proc = _start_holder(state_dir, gate, tmp_path / "holder.log")
    try:
        _wait(lambda: (gate / f"won-{proc.pid}").exists(), "the holder to take the lock")
        with StateStore.open(state_dir) as store:
            with pytest.raises(HostLocked, match=f"locked by pid {proc.pid} since"), store.host_lock(HOST):
                pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            with store.host_lock(HOST):
                pass
    finally:
        stop_pid(proc.pid)


WRITER = """
import sys
from pathlib import Path
from provision.store.state import StateStore
with StateStore.open(Path(sys.argv[1])) as store:
    for i in range(int(sys.argv[2])):
        run = store.create_run("inferno-host-compute-1", sys.argv[3])
        store.add_event("inferno-host-compute-1", "sample", {"i": i}, run.id)
"""


def test_two_processes_write_one_store_without_losing_a_row(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    StateStore.open(state_dir).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(state_dir), "150", f"writer-{n}"],
            env=env,
            start_new_session=True,
        )
        for n in range(2)
    ]
    try:
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    finally:
        for p in procs:
            stop_pid(p.pid)
    with StateStore.open(state_dir) as store:
        runs = store.list_runs("inferno-host-compute-1")
        assert len(runs) == len({r.id for r in runs}) == 300
        assert {r.kind for r in runs} == {"writer-0", "writer-1"}
        assert len(store.events(kind="sample")) == 300


def test_a_failing_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "old"
    _v1_database(state_dir)

    def broken_v2(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE documents (x TEXT)")
        db.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(statedb, "MIGRATIONS", (statedb.MIGRATIONS[0], broken_v2))
    with pytest.raises(StateError, match="no such table: no_such_table"):
        StateStore.open(state_dir)
    db = sqlite3.connect(state_dir / statedb.DB_FILE)
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'documents'").fetchone() is None
    db.close()
    monkeypatch.undo()
    with StateStore.open(state_dir) as store:  # the real migration still applies afterwards
        assert (
            store.schema_version == statedb.SCHEMA_VERSION
            and store.get_host_state(HOST) is HostState.accepted
        )
