"""Adapter: the state store. Hosts and their lifecycle, runs with their journal of steps, events,
collected documents (inventories, results, reports), install tokens and the per-host lock.

Embedded SQLite (WAL) under the state dir; documents are files under state_dir/runs/<run_id>/ with
their sha256 and size in the database. One connection per store, serialised by a lock, so a store
may be shared by threads; several processes share the file through SQLite's own locking.
Documents are written before a step is marked, so nothing collected is lost when a step fails.
Secrets are never stored: a token is kept only as its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from provision.model.errors import BadInput, NotFound, StateError
from provision.store import db as statedb
from provision.store import hostlock
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
    dt,
    ts,
)

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

DOCUMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        host=row["host"],
        kind=row["kind"],
        status=RunStatus(row["status"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        ended_at=dt(row["ended_at"]),
    )


class StateStore(AbstractContextManager["StateStore"]):
    def __init__(self, state_dir: Path, db: sqlite3.Connection) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / statedb.DB_FILE
        self._db = db
        self._db.row_factory = sqlite3.Row
        self._mutex = threading.RLock()

    @classmethod
    def open(cls, state_dir: Path) -> StateStore:
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
    def open_existing(cls, state_dir: Path) -> StateStore | None:
        """The store if one was ever created there; None (nothing created) otherwise. For read commands."""
        if not (state_dir / statedb.DB_FILE).exists():
            return None
        return cls.open(state_dir)

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._mutex:
            return statedb.current_version(self._db)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return statedb.transaction(self._db, self.db_path)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._mutex:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StateError(f"{self.db_path}: {exc}") from None

    # -- hosts ---------------------------------------------------------------------------------
    def get_host_state(self, host: str) -> HostState | None:
        rows = self._read("SELECT state FROM hosts WHERE name = ?", (host,))
        return HostState(rows[0]["state"]) if rows else None

    def set_host_state(self, host: str, state: HostState, reason: str = "") -> None:
        state = HostState(state)
        at = ts(_now())
        with self._mutex, self._write() as db:
            row = db.execute("SELECT state FROM hosts WHERE name = ?", (host,)).fetchone()
            previous = row["state"] if row else None
            db.execute(
                "INSERT INTO hosts (name, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (host, str(state), at),
            )
            db.execute(
                "INSERT INTO host_history (host, previous, state, reason, at) VALUES (?, ?, ?, ?, ?)",
                (host, previous, str(state), reason, at),
            )

    def host_history(self, host: str) -> list[HostTransition]:
        rows = self._read("SELECT * FROM host_history WHERE host = ? ORDER BY id", (host,))
        return [
            HostTransition(
                host=r["host"],
                previous=HostState(r["previous"]) if r["previous"] else None,
                state=HostState(r["state"]),
                reason=r["reason"],
                at=datetime.fromisoformat(r["at"]),
            )
            for r in rows
        ]

    def list_hosts(self) -> list[HostRow]:
        return [
            HostRow(
                name=r["name"],
                state=HostState(r["state"]),
                updated_at=datetime.fromisoformat(r["updated_at"]),
                last_run_id=r["last_run_id"],
            )
            for r in self._read("SELECT * FROM hosts ORDER BY name")
        ]

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, host: str, kind: str) -> Run:
        started = _now()
        with self._mutex, self._write() as db:
            while True:
                # Sortable by start time; the random suffix separates runs started in one second.
                run_id = f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
                if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                    break
            db.execute(
                "INSERT INTO runs (id, host, kind, status, started_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, host, kind, str(RunStatus.running), ts(started)),
            )
            db.execute(
                "INSERT INTO hosts (name, state, updated_at, last_run_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_run_id = excluded.last_run_id",
                (host, str(HostState.enrolled), ts(started), run_id),
            )
        return Run(run_id, host, kind, RunStatus.running, started, None)

    def get_run(self, run_id: str) -> Run:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFound(f"run: expected a known run id, got {run_id!r}")
        return _run(rows[0])

    def list_runs(self, host: str | None = None, kind: str | None = None) -> list[Run]:
        sql, args = "SELECT * FROM runs WHERE 1 = 1", list[str]()
        if host is not None:
            sql, args = sql + " AND host = ?", [*args, host]
        if kind is not None:
            sql, args = sql + " AND kind = ?", [*args, kind]
        return [_run(r) for r in self._read(sql + " ORDER BY started_at, id", tuple(args))]

    def latest_run(self, host: str, kind: str | None = None) -> Run | None:
        runs = self.list_runs(host, kind)
        return runs[-1] if runs else None

    def finish_run(self, run_id: str, status: RunStatus) -> Run:
        status = RunStatus(status)
        if status is RunStatus.running:
            raise BadInput(f"run {run_id}: status: expected succeeded, failed or interrupted, got running")
        with self._mutex, self._write() as db:
            changed = db.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (str(status), ts(_now()), run_id)
            ).rowcount
            db.execute("UPDATE tokens SET revoked = 1 WHERE run_id = ?", (run_id,))
        if not changed:
            raise NotFound(f"run: expected a known run id, got {run_id!r}")
        return self.get_run(run_id)

    def interrupt_stale_runs(self, host: str) -> list[Run]:
        """Mark `host`'s runs still `running` as interrupted; call it holding host_lock(host), which
        proves that no live process owns them (their process died without finishing them)."""
        stale = [r for r in self.list_runs(host) if r.status is RunStatus.running]
        for run in stale:
            self.finish_run(run.id, RunStatus.interrupted)
        return [self.get_run(r.id) for r in stale]

    # -- journal -------------------------------------------------------------------------------
    def step_started(self, run_id: str, step: str) -> None:
        self.get_run(run_id)
        with self._mutex, self._write() as db:
            db.execute(
                "INSERT INTO steps (run_id, step, started_at) VALUES (?, ?, ?)", (run_id, step, ts(_now()))
            )

    def step_finished(
        self,
        run_id: str,
        step: str,
        outcome: StepOutcome,
        evidence: dict[str, Any] | None = None,
        message: str = "",
    ) -> None:
        outcome = StepOutcome(outcome)
        self.get_run(run_id)
        at = ts(_now())
        blob = _json(evidence) if evidence is not None else None
        with self._mutex, self._write() as db:
            open_row = db.execute(
                "SELECT id FROM steps WHERE run_id = ? AND step = ? AND ended_at IS NULL ORDER BY id DESC",
                (run_id, step),
            ).fetchone()
            if open_row is None:  # finished without a recorded start: keep it, zero length
                db.execute(
                    "INSERT INTO steps (run_id, step, started_at, ended_at, outcome, message, evidence) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, step, at, at, str(outcome), message, blob),
                )
            else:
                db.execute(
                    "UPDATE steps SET ended_at = ?, outcome = ?, message = ?, evidence = ? WHERE id = ?",
                    (at, str(outcome), message, blob, open_row["id"]),
                )

    def steps(self, run_id: str) -> list[StepRow]:
        return [
            StepRow(
                step=r["step"],
                started_at=datetime.fromisoformat(r["started_at"]),
                ended_at=dt(r["ended_at"]),
                outcome=StepOutcome(r["outcome"]) if r["outcome"] else None,
                message=r["message"],
                evidence=json.loads(r["evidence"]) if r["evidence"] else None,
            )
            for r in self._read("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,))
        ]

    def completed_steps(self, run_id: str) -> set[str]:
        """Steps whose latest attempt ended ok or skipped: what a resumed run need not redo."""
        latest: dict[str, StepOutcome | None] = {}
        for row in self.steps(run_id):
            latest[row.step] = row.outcome
        return {s for s, o in latest.items() if o in (StepOutcome.ok, StepOutcome.skipped)}

    # -- events --------------------------------------------------------------------------------
    def add_event(self, host: str, kind: str, payload: dict[str, Any], run_id: str | None = None) -> None:
        with self._mutex, self._write() as db:
            db.execute(
                "INSERT INTO events (host, run_id, kind, payload, at) VALUES (?, ?, ?, ?, ?)",
                (host, run_id, kind, _json(payload), ts(_now())),
            )

    def events(
        self, host: str | None = None, run_id: str | None = None, kind: str | None = None
    ) -> list[EventRow]:
        sql, args = "SELECT * FROM events WHERE 1 = 1", list[str]()
        for column, value in (("host", host), ("run_id", run_id), ("kind", kind)):
            if value is not None:
                sql, args = sql + f" AND {column} = ?", [*args, value]
        return [
            EventRow(
                id=r["id"],
                host=r["host"],
                run_id=r["run_id"],
                kind=r["kind"],
                payload=json.loads(r["payload"]),
                at=datetime.fromisoformat(r["at"]),
            )
            for r in self._read(sql + " ORDER BY id", tuple(args))
        ]

    # -- documents -----------------------------------------------------------------------------
    def _document_path(self, run_id: str, name: str) -> Path:
        if not DOCUMENT_NAME_RE.match(name) or ".." in name:
            raise BadInput(f"document name: expected letters, digits, '.', '_' and '-', got {name!r}")
        return self.state_dir / "runs" / run_id / name

    def put_document(self, run_id: str, name: str, data: dict[str, Any] | bytes) -> DocumentRef:
        self.get_run(run_id)
        path = self._document_path(run_id, name)
        blob = data if isinstance(data, bytes) else (json.dumps(data, indent=2, default=str) + "\n").encode()
        digest = hashlib.sha256(blob).hexdigest()
        _write_atomically(path, blob)
        created = _now()
        with self._mutex, self._write() as db:
            db.execute(
                "INSERT INTO documents (run_id, name, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id, name) DO UPDATE SET sha256 = excluded.sha256, "
                "size_bytes = excluded.size_bytes, created_at = excluded.created_at",
                (run_id, name, digest, len(blob), ts(created)),
            )
        return DocumentRef(run_id, name, path, digest, len(blob), created)

    def documents(self, run_id: str) -> list[DocumentRef]:
        rows = self._read("SELECT * FROM documents WHERE run_id = ? ORDER BY created_at, name", (run_id,))
        return [
            DocumentRef(
                run_id=r["run_id"],
                name=r["name"],
                path=self._document_path(run_id, r["name"]),
                sha256=r["sha256"],
                size_bytes=r["size_bytes"],
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
        ]

    def get_document(self, run_id: str, name: str) -> bytes:
        path = self._document_path(run_id, name)
        rows = self._read("SELECT sha256 FROM documents WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            raise NotFound(f"document: expected {name!r} in run {run_id}, got none")
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise StateError(f"{path}: expected the stored document, got {exc}") from None
        if hashlib.sha256(blob).hexdigest() != rows[0]["sha256"]:
            raise StateError(f"{path}: expected sha256 {rows[0]['sha256']}, got a file that changed since")
        return blob

    # -- tokens --------------------------------------------------------------------------------
    def issue_token(self, run_id: str, host: str, ttl_s: float) -> str:
        if ttl_s <= 0:
            raise BadInput(f"token ttl_s: expected a value > 0, got {ttl_s}")
        self.get_run(run_id)
        token = secrets.token_urlsafe(32)
        with self._mutex, self._write() as db:
            db.execute(
                "INSERT INTO tokens (sha256, run_id, host, expires_at) VALUES (?, ?, ?, ?)",
                (_digest(token), run_id, host, time.time() + ttl_s),
            )
        return token

    def check_token(self, host: str, token: str) -> Run | None:
        """The running run `token` was issued for, if it is valid for `host`; None otherwise."""
        rows = self._read(
            "SELECT runs.* FROM tokens JOIN runs ON runs.id = tokens.run_id "
            "WHERE tokens.sha256 = ? AND tokens.host = ? AND tokens.revoked = 0 AND tokens.expires_at > ? "
            "AND runs.status = ? AND runs.host = ?",
            (_digest(token), host, time.time(), str(RunStatus.running), host),
        )
        return _run(rows[0]) if rows else None

    def revoke_tokens(self, run_id: str) -> None:
        with self._mutex, self._write() as db:
            db.execute("UPDATE tokens SET revoked = 1 WHERE run_id = ?", (run_id,))

    # -- lock ----------------------------------------------------------------------------------
    def host_lock(self, host: str) -> AbstractContextManager[None]:
        """Exclusive for the block, across processes; a second holder gets HostLocked at once."""
        return hostlock.host_lock(self.state_dir, host)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _write_atomically(path: Path, blob: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, rename: readers see the old or the new, whole."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StateError(f"{path}: could not write the document: {exc}") from None
