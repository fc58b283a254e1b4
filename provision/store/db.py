"""Adapter: the SQLite file under the state dir, its schema and the migrations between versions.

The schema version lives in `schema_version` (one row). MIGRATIONS is ordered: migration i takes the
database from version i to version i + 1. A database newer than this code is refused, never touched.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from provision.model.errors import StateError

DB_FILE = "state.sqlite3"
BUSY_TIMEOUT_MS = 15_000


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it COMMITs first, which would split a migration across transactions.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1_core(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE hosts (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_run_id TEXT
        );
        CREATE TABLE host_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            previous TEXT,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        );
        CREATE INDEX host_history_host ON host_history(host, id);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
        CREATE INDEX runs_host ON runs(host, id);
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            step TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            outcome TEXT,
            message TEXT NOT NULL DEFAULT '',
            evidence TEXT
        );
        CREATE INDEX steps_run ON steps(run_id, id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            run_id TEXT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX events_host ON events(host, id);
        CREATE INDEX events_run ON events(run_id, id);
        """,
    )


def _v2_documents_tokens(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE documents (
            run_id TEXT NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        CREATE TABLE tokens (
            sha256 TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            host TEXT NOT NULL,
            expires_at REAL NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX tokens_run ON tokens(run_id);
        """,
    )


def _v3_ledger(db: sqlite3.Connection) -> None:
    # Fleet admission's holds (provision.store.ledger); the same table on PostgreSQL (pgdb).
    _run_script(
        db,
        """
        CREATE TABLE ledger_holds (
            key TEXT NOT NULL,
            holder TEXT NOT NULL,
            owner TEXT NOT NULL,
            amount REAL NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (key, holder)
        );
        CREATE INDEX ledger_holds_owner ON ledger_holds(owner);
        """,
    )


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_v1_core, _v2_documents_tokens, _v3_ledger)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the database in autocommit mode; transactions are explicit (`transaction`)."""
    try:
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = _tables(db)
        if tables and "schema_version" not in tables:
            db.close()
            raise _foreign(path, tables)  # before WAL: switching the journal mode writes the file
        _use_wal(db)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        raise StateError(f"{path}: expected a usable SQLite state database, got {exc}") from None
    return db


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing database for reading only: never created, never migrated, never written.

    `mode=ro` still takes SQLite's locks and reads the WAL, so it sees every commit. It needs the
    `-shm` and `-wal` files, and SQLite creates them when they are missing, which a read-only state
    directory forbids. There, and only there, the file is opened `immutable=1`: no locks, no WAL.
    That is exact when no `-wal` file exists (every commit is in the main file: the last writer to
    close checkpoints and removes it) and nobody writes meanwhile, which in a directory we cannot
    write takes a writer with more rights than ours; hence never where `mode=ro` works. A `-wal`
    file (a writer that runs or died) holds commits only `mode=ro` sees, so then `mode=ro` is tried
    and its error, if it cannot, is the answer (one line, exit 3)."""
    writable = os.access(path.parent, os.W_OK)
    wal = path.with_name(path.name + "-wal")
    how = "mode=ro" if writable or wal.exists() else "immutable=1"
    try:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?{how}",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StateError(f"{path}: expected a usable SQLite state database, got {exc}") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        check_current(db, path)
    except sqlite3.Error as exc:
        db.close()
        raise StateError(f"{path}: expected a usable SQLite state database, got {exc}") from None
    except BaseException:
        db.close()
        raise
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """WAL: readers never block the writer, several processes share one file safely.

    Switching a new file to WAL needs an exclusive lock, and when two processes create the store at
    the same moment SQLite answers "database is locked" at once instead of calling its busy handler:
    wait for the other one here, as long as the busy timeout would have."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (SQLITE_FULL, SQLITE_IOERR).
    if db.in_transaction:
        db.execute("ROLLBACK")


@contextmanager
def transaction(db: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StateError(f"{path}: could not start a transaction: {exc}") from None
    try:
        yield db
    except sqlite3.Error as exc:
        _rollback(db)
        raise StateError(f"{path}: {exc}") from None
    except BaseException:
        _rollback(db)
        raise
    else:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: could not commit: {exc}") from None


def current_version(db: sqlite3.Connection) -> int:
    row = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    got = db.execute("SELECT version FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def _tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    return [str(r[0]) for r in rows if not str(r[0]).startswith("sqlite_")]


def _newer(path: Path, version: int) -> StateError:
    return StateError(
        f"{path}: expected schema version <= {SCHEMA_VERSION} (this provision), got {version}: "
        "the state was written by a newer provision"
    )


def _foreign(path: Path, tables: list[str]) -> StateError:
    # Counted, not named: the names are another program's text.
    return StateError(
        f"{path}: expected a provision state database (a schema_version table), "
        f"got another program's database ({len(tables)} table(s), no schema_version)"
    )


def check_current(db: sqlite3.Connection, path: Path) -> None:
    """For a reader: the database is provision's, at this code's version. A reader changes nothing,
    so an empty, foreign or older file is refused where a writer would initialise or migrate it."""
    tables = _tables(db)
    if not tables:
        raise StateError(
            f"{path}: expected a provision state database, got an empty one "
            "(a command that writes, such as provision host or inspect, creates it)"
        )
    if "schema_version" not in tables:
        raise _foreign(path, tables)
    version = current_version(db)
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    if version == 0:  # a writer is creating it this very moment
        raise StateError(f"{path}: expected a provision state database, got one still being created")
    if version < SCHEMA_VERSION:
        raise StateError(
            f"{path}: expected schema version {SCHEMA_VERSION}, got {version}, from an older provision "
            "(a command that writes, such as provision host or inspect, migrates it)"
        )


def migrate(db: sqlite3.Connection, path: Path, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to `target`, one migration per transaction. Returns the version reached.

    An empty database is initialised; one holding someone else's tables was refused by `connect`."""
    with transaction(db, path):
        version = current_version(db)
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        if version == 0:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
    while True:
        with transaction(db, path):
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = current_version(db)
            if version >= target:
                return version
            MIGRATIONS[version](db)
            db.execute("UPDATE schema_version SET version = ?", (version + 1,))
