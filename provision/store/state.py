"""Adapter: the state store. Hosts and their lifecycle, runs with their journal of steps, events,
collected documents (inventories, results, reports), install tokens and the per-host lock.

Embedded SQLite (WAL) under the state dir; documents are files under state_dir/runs/<run_id>/ with
their sha256 and size in the database. One connection per store, serialised by a lock, so a store
may be shared by threads; several processes share the file through SQLite's own locking.
Documents are written before a step is marked, so nothing collected is lost when a step fails.
Secrets are never stored: a token is kept only as its sha256.

`StateStore` is the one interface callers use; it opens and closes the database and delegates each
query to the module of its noun: hosts, runs, journal (steps and events), documents, tokens, and
fleet admission's ledger (provision.store.ledger).

The same class opens a shared PostgreSQL store when the state is a `postgresql://` URL (see
provision.store.storeurl): the noun modules run unchanged on its connection, documents go to the
shared directory the URL names (which is then `state_dir`), and the per-host lock is a lease row in
the database (provision.store.lease) instead of a flock file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from provision.model.errors import StateError
from provision.store import db as statedb
from provision.store import documents, hostlock, hosts, journal, runs, tokens
from provision.store.connection import Connection, StoreConnection
from provision.store.ledger import StoreLedger
from provision.store.lifecycle import (
    DocumentRef,
    EventRow,
    HostRow,
    HostState,
    HostTransition,
    Run,
    RunStatus,
    StepOutcome,
    StepRow,
)
from provision.store.storeurl import PgTarget, is_postgres, parse_target

# The hold length of the ledger on SQLite, whose host locks are flocks with no length of their own:
# that of a PostgreSQL lease by default (provision.store.storeurl).
DEFAULT_HOLD_S = 30.0
_LEDGER_LOCK = threading.Lock()  # one ledger per store, however many threads ask at once

__all__ = [
    "DocumentRef",
    "EventRow",
    "HostRow",
    "HostState",
    "HostTransition",
    "Run",
    "RunStatus",
    "StateStore",
    "StepOutcome",
    "StepRow",
]


class StateStore(AbstractContextManager["StateStore"]):
    def __init__(self, state_dir: Path, db: sqlite3.Connection) -> None:
        # SQLite's connection is serialised by its own mutex (provision.store.connection).
        self.state_dir = state_dir
        self.db_path: Path | None = state_dir / statedb.DB_FILE
        self.url: str | None = None
        conn = Connection(state_dir, self.db_path, db)
        self._conn: StoreConnection = conn
        self._version: Callable[[], int] = lambda: statedb.current_version(conn.db)
        self._lock: Callable[[str], AbstractContextManager[None]] = lambda host: hostlock.host_lock(
            state_dir, host
        )
        self._hold_s = DEFAULT_HOLD_S
        self._clock: Callable[[], float] = time.time
        self._ledger: StoreLedger | None = None

    @classmethod
    def _postgres(cls, target: PgTarget, readonly: bool, create: bool = True) -> StateStore | None:
        # Imported here: psycopg is needed only by a store that uses PostgreSQL.
        from provision.store import lease, pgdb
        from provision.store.pgconnection import PgConnection

        where = target.display()
        db = pgdb.connect(target, readonly=readonly)
        try:
            if readonly and not pgdb.check_current(db, where):
                db.close()
                return None
            if not readonly:
                if not create and not pgdb.has_tables(db, where):
                    db.close()
                    return None
                pgdb.migrate(db, where)
        except BaseException:
            db.close()
            raise
        conn = PgConnection(target, db)
        store = cls.__new__(cls)
        store.state_dir = target.documents_dir
        store.db_path = None
        store.url = where
        store._conn = conn

        def version() -> int:
            with conn.mutex:
                return pgdb.current_version(conn.db)

        store._version = version
        store._lock = lambda host: lease.host_lease(conn, host, target.lease_s)
        store._hold_s = target.lease_s
        store._clock = conn.server_time
        store._ledger = None
        return store

    @classmethod
    def open(cls, state_dir: Path | str) -> StateStore:
        if is_postgres(state_dir):
            store = cls._postgres(parse_target(state_dir), readonly=False)
            if store is None:  # pragma: no cover - a writer always gets a store
                raise StateError(f"{state_dir}: could not open the store")
            return store
        state_dir = Path(state_dir)
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"{state_dir}: expected a writable state directory, got {exc}") from None
        path = state_dir / statedb.DB_FILE
        db = statedb.connect(path)
        try:
            statedb.migrate(db, path)
        except BaseException:
            db.close()
            raise
        return cls(state_dir, db)

    @classmethod
    def open_existing(cls, state_dir: Path | str) -> StateStore | None:
        """For read commands: the store read-only if one was ever created there, None otherwise.

        Nothing is created, migrated or written, so a read works in a read-only state directory and
        an empty, foreign or older database is refused (StateError) instead of being changed.
        A PostgreSQL database with no tables at all is None (no store was ever created there)."""
        if is_postgres(state_dir):
            return cls._postgres(parse_target(state_dir), readonly=True)
        state_dir = Path(state_dir)
        if state_dir.exists() and not state_dir.is_dir():
            raise StateError(f"{state_dir}: expected a state directory, got a file")
        path = state_dir / statedb.DB_FILE
        if not path.exists():
            return None
        if not path.is_file():
            raise StateError(f"{path}: expected a SQLite state database, got something that is not a file")
        return cls(state_dir, statedb.connect_readonly(path))

    @classmethod
    def open_existing_for_write(cls, state_dir: Path | str) -> StateStore | None:
        """For a command that changes a store it needs to exist (nothing to act on otherwise): the
        store, migrated if older, or None (nothing created)."""
        if is_postgres(state_dir):
            return cls._postgres(parse_target(state_dir), readonly=False, create=False)
        state_dir = Path(state_dir)
        if not (state_dir / statedb.DB_FILE).exists():
            return None
        return cls.open(state_dir)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._version()

    # -- hosts ---------------------------------------------------------------------------------
    def get_host_state(self, host: str) -> HostState | None:
        return hosts.get_host_state(self._conn, host)

    def set_host_state(self, host: str, state: HostState, reason: str = "") -> None:
        hosts.set_host_state(self._conn, host, state, reason)

    def host_history(self, host: str) -> list[HostTransition]:
        return hosts.host_history(self._conn, host)

    def list_hosts(self) -> list[HostRow]:
        return hosts.list_hosts(self._conn)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, host: str, kind: str) -> Run:
        return runs.create_run(self._conn, host, kind)

    def get_run(self, run_id: str) -> Run:
        return runs.get_run(self._conn, run_id)

    def list_runs(self, host: str | None = None, kind: str | None = None) -> list[Run]:
        return runs.list_runs(self._conn, host, kind)

    def latest_run(self, host: str, kind: str | None = None) -> Run | None:
        return runs.latest_run(self._conn, host, kind)

    def finish_run(self, run_id: str, status: RunStatus, keep_tokens: bool = False) -> Run:
        """End the run. Its install tokens are revoked unless `keep_tokens` (a run stopped by an error
        that a rerun resumes: the install it started may still call back meanwhile)."""
        return runs.finish_run(self._conn, run_id, status, keep_tokens)

    def reopen_run(self, run_id: str) -> Run:
        """A stopped run that a rerun resumes is `running` again."""
        return runs.reopen_run(self._conn, run_id)

    def interrupt_stale_runs(self, host: str) -> list[Run]:
        """Mark `host`'s runs still `running` as interrupted; call it holding host_lock(host), which
        proves that no live process owns them (their process died without finishing them)."""
        return runs.interrupt_stale_runs(self._conn, host)

    # -- journal: steps and events -------------------------------------------------------------
    def step_started(self, run_id: str, step: str) -> None:
        journal.step_started(self._conn, run_id, step)

    def step_finished(
        self,
        run_id: str,
        step: str,
        outcome: StepOutcome,
        evidence: dict[str, Any] | None = None,
        message: str = "",
    ) -> None:
        journal.step_finished(self._conn, run_id, step, outcome, evidence, message)

    def steps(self, run_id: str) -> list[StepRow]:
        return journal.steps(self._conn, run_id)

    def completed_steps(self, run_id: str) -> set[str]:
        """Steps whose latest attempt ended ok or skipped: what a resumed run need not redo."""
        return journal.completed_steps(self._conn, run_id)

    def add_event(self, host: str, kind: str, payload: dict[str, Any], run_id: str | None = None) -> None:
        journal.add_event(self._conn, host, kind, payload, run_id)

    def events(
        self, host: str | None = None, run_id: str | None = None, kind: str | None = None
    ) -> list[EventRow]:
        return journal.events(self._conn, host, run_id, kind)

    # -- documents -----------------------------------------------------------------------------
    def put_document(self, run_id: str, name: str, data: dict[str, Any] | bytes) -> DocumentRef:
        return documents.put_document(self._conn, run_id, name, data)

    def documents(self, run_id: str) -> list[DocumentRef]:
        return documents.documents(self._conn, run_id)

    def get_document(self, run_id: str, name: str) -> bytes:
        return documents.get_document(self._conn, run_id, name)

    # -- tokens --------------------------------------------------------------------------------
    def issue_token(self, run_id: str, host: str, ttl_s: float) -> str:
        return tokens.issue_token(self._conn, run_id, host, ttl_s)

    def check_token(self, host: str, token: str) -> Run | None:
        """The unfinished run `token` was issued for, if it is valid for `host`; None otherwise."""
        return tokens.check_token(self._conn, host, token)

    def revoke_tokens(self, run_id: str) -> None:
        tokens.revoke_tokens(self._conn, run_id)

    # -- admission ledger ----------------------------------------------------------------------
    def ledger(self, hold_s: float | None = None) -> StoreLedger:
        """Fleet admission's ledger over this store, one per store (provision.store.ledger): atomic
        across processes and controllers; its holds last `hold_s` (default: the store's lease
        length), renewed while it lives. The first call's length stands."""
        with _LEDGER_LOCK:
            if self._ledger is None:
                self._ledger = StoreLedger(self._conn, self._clock, hold_s or self._hold_s)
            return self._ledger

    # -- lock ----------------------------------------------------------------------------------
    def host_lock(self, host: str) -> AbstractContextManager[None]:
        """Exclusive for the block, across processes; a second holder gets HostLocked at once. On
        PostgreSQL, across controllers too: a lease renewed while the block runs, which another
        controller takes over once it expires unrenewed (the holder died)."""
        return self._lock(host)
