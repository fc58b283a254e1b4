"""Adapter: the PostgreSQL store's one session, with the interface of provision.store.connection.

The noun modules write their SQL once, with SQLite's `?` placeholders; here each `?` becomes psycopg's
`%s` (and a literal `%` is doubled), so the same statements run on both engines. No statement of
theirs holds a `?` inside a string literal, which is what makes that rewrite exact. psycopg objects
never leave this module and provision.store.pgdb: a caller sees rows read by column name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg

from provision.model.errors import StateError
from provision.store import pgdb
from provision.store.connection import Cursor
from provision.store.storeurl import PgTarget


@lru_cache(maxsize=256)
def to_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _Tx:
    """What `write` yields: `execute` as on a sqlite3 connection."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self._db = db

    def execute(self, sql: str, parameters: tuple[Any, ...] = (), /) -> Cursor:
        return self._db.execute(to_psycopg(sql), parameters)


@dataclass(frozen=True, eq=False)
class PgConnection:
    target: PgTarget
    db: psycopg.Connection[Any]
    mutex: threading.RLock = field(default_factory=threading.RLock)

    @property
    def state_dir(self) -> Path:
        """Where run documents live: the shared directory every controller mounts."""
        return self.target.documents_dir

    @property
    def where(self) -> str:
        return self.target.display()

    def close(self) -> None:
        with self.mutex:
            self.db.close()

    @contextmanager
    def write(self) -> Iterator[_Tx]:
        with self.mutex, pgdb.transaction(self.db, self.where) as db:
            yield _Tx(db)

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self.mutex:
            try:
                return list(self.db.execute(to_psycopg(sql), args).fetchall())
            except psycopg.Error as exc:
                raise StateError(f"{self.where}: {' '.join(str(exc).split())}") from None

    def server_time(self) -> float:
        """The database's clock (epoch seconds): leases compare against one clock, whatever the
        controllers' own clocks say."""
        rows = self.read("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now")
        return float(rows[0]["now"])
