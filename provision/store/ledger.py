"""Adapter: the admission ledger in the store: amounts held against a limit per key (watts on a PDU
circuit, installs at once), one ledger for every process and every controller sharing the store.

`acquire` is one write transaction: sum the live holds of the key, and add the new hold only if the
sum stays within the limit. The store's write transaction already serialises every writer (SQLite:
BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory lock, provision.store.pgdb), so two
processes or two controllers never both pass the check for the last room; a per-key lock would add
nothing but a second lock order.

A hold is a row (key, holder, owner, amount, expires_at). `holder` is what the caller names (a
host); `owner` is the controller process that took it (pid, machine and a random tag, as a lease
holder is named). Holds last as host leases do: `expires_at` is the lease length ahead, and the
ledger that took them renews all of its holds every third of that length, the cadence of
provision.store.lease. A controller that dies renews nothing, so its holds stop counting once that
length has passed, the moment its host leases expire too, and the capacity they held comes back to
the others. Expired holds are never counted and are swept by the next acquire of their key.

Time is the store's clock: the database server's on PostgreSQL (controllers with skewed clocks
agree), the machine's own on SQLite (one machine holds the file).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

from provision.model.errors import BadInput, StateError
from provision.store.connection import StoreConnection

Clock = Callable[[], float]  # epoch seconds


def owner_id() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} ({secrets.token_hex(3)})"


def _check(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise BadInput(f"ledger {name}: expected a finite number >= 0, got {value!r}")


class StoreLedger:
    """The `Ledger` of fleet admission, kept in the store (see the module's text)."""

    def __init__(self, conn: StoreConnection, clock: Clock, hold_s: float, owner: str | None = None) -> None:
        if not hold_s > 0:
            raise BadInput(f"ledger hold_s: expected a number of seconds > 0, got {hold_s}")
        self._conn = conn
        self._clock = clock
        self.hold_s = hold_s
        self.owner = owner or owner_id()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def acquire(self, key: str, amount: float, limit: float, holder: str) -> bool:
        """Hold `amount` of `key` for `holder` if the live holds plus it stay within `limit`. A holder
        that already holds the key has its hold replaced (its old amount does not count twice)."""
        if not key or not holder:
            raise BadInput(f"ledger: expected a key and a holder, got {key!r} and {holder!r}")
        _check("amount", amount)
        _check("limit", limit)
        with self._conn.write() as db:
            now_s = self._clock()
            db.execute("DELETE FROM ledger_holds WHERE key = ? AND expires_at <= ?", (key, now_s))
            row = db.execute(
                "SELECT COALESCE(SUM(amount), 0) AS used FROM ledger_holds WHERE key = ? AND holder <> ?",
                (key, holder),
            ).fetchone()
            if float(row["used"]) + amount > limit:
                return False
            acquired = datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds")
            db.execute(
                "INSERT INTO ledger_holds (key, holder, owner, amount, acquired_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key, holder) DO UPDATE SET "
                "owner = excluded.owner, amount = excluded.amount, acquired_at = excluded.acquired_at, "
                "expires_at = excluded.expires_at",
                (key, holder, self.owner, float(amount), acquired, now_s + self.hold_s),
            )
        self._start_renewing()
        return True

    def release(self, key: str, holder: str) -> None:
        """Give back `holder`'s hold on `key`; a hold this ledger does not own (it expired and another
        controller took the holder over) is left to its owner."""
        with self._conn.write() as db:
            db.execute(
                "DELETE FROM ledger_holds WHERE key = ? AND holder = ? AND owner = ?",
                (key, holder, self.owner),
            )

    def in_use(self, key: str) -> float:
        """The sum of the live holds of `key`, whoever holds them."""
        rows = self._conn.read(
            "SELECT COALESCE(SUM(amount), 0) AS used FROM ledger_holds WHERE key = ? AND expires_at > ?",
            (key, self._clock()),
        )
        return float(rows[0]["used"])

    def renew(self) -> int:
        """Push every hold of this ledger's owner one hold length ahead; returns how many there are."""
        with self._conn.write() as db:
            return int(
                db.execute(
                    "UPDATE ledger_holds SET expires_at = ? WHERE owner = ?",
                    (self._clock() + self.hold_s, self.owner),
                ).rowcount
            )

    def _start_renewing(self) -> None:
        with self._start_lock:
            if self._renewer is not None or self._stop.is_set():
                return

            def keep() -> None:
                while not self._stop.wait(self.hold_s / 3):
                    # The database away: try again next period; unrenewed, the holds expire.
                    with suppress(StateError):
                        self.renew()

            self._renewer = threading.Thread(target=keep, name="ledger-renew", daemon=True)
            self._renewer.start()

    def close(self, release_all: bool = True) -> None:
        """Stop renewing; give back every hold of this owner (a clean stop) unless `release_all` is
        False, when they expire after one hold length as a dead controller's do."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if release_all:
            with suppress(StateError), self._conn.write() as db:
                db.execute("DELETE FROM ledger_holds WHERE owner = ?", (self.owner,))
