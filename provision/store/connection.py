"""The store's one SQLite connection with the lock that serialises it, and the store's clock.

Every noun module (hosts, runs, journal, documents, tokens) takes this object rather than the store,
so each reads and writes through the same two helpers: `read` for a query, `write` for a transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.model.errors import StateError
from provision.store import db as statedb


def now() -> datetime:
    """The time rows are stamped with: aware UTC, so stamps from any process compare."""
    return datetime.now(UTC)


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
