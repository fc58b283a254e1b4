"""The store's one SQLite connection with the lock that serialises it, and the store's clock.

Every noun module (hosts, runs, journal, documents, tokens) takes this object rather than the store,
so each reads and writes through the same two helpers: `read` for a query, `write` for a transaction.
`StoreConnection` is that interface; the PostgreSQL store's (provision.store.pgconnection) has it too,
so the noun modules' SQL runs on both engines unchanged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from provision.model.errors import StateError
from provision.store import db as statedb


def now() -> datetime:
    """The time rows are stamped with: aware UTC, so stamps from any process compare."""
    return datetime.now(UTC)


class Row(Protocol):
    """A row read by column name: sqlite3.Row, or psycopg's dict row."""

    def __getitem__(self, key: str, /) -> Any: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...


class Transaction(Protocol):
    """What `write` yields: `execute` with `?` placeholders, as SQLite writes them."""

    def execute(self, sql: str, parameters: tuple[Any, ...] = ..., /) -> Cursor: ...


class StoreConnection(Protocol):
    """The interface every noun module takes. `state_dir` is where run documents live."""

    @property
    def state_dir(self) -> Path: ...

    def close(self) -> None: ...

    def write(self) -> AbstractContextManager[Transaction]: ...

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]: ...


@dataclass(frozen=True, eq=False)
class Connection:
    state_dir: Path
    db_path: Path
    db: sqlite3.Connection
    # Reentrant: a writer may read back through the same connection while holding it.
    mutex: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        with self.mutex:
            self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, holding the lock so that threads sharing the store take turns."""
        with self.mutex, statedb.transaction(self.db, self.db_path) as db:
            yield db

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.mutex:
            try:
                return list(self.db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StateError(f"{self.db_path}: {exc}") from None
