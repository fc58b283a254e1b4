"""Adapter: host leases, the PostgreSQL store's per-host lock shared by several controllers.

A lease is a row (host, holder, acquired_at, expires_at) in the shared database. A controller claims
a host by writing its row when there is none or the one there has expired, renews it from a thread
every third of its length while it works, and deletes it when done. Another controller that asks
for the host is refused with the holder and the expiry (HostLocked), as a second flock holder is.
When a holder dies (SIGKILL, a lost machine), nobody renews: once its lease expires, the next claim
takes the host over, and a resumed run continues from the journal.

Expiry is judged on the database's clock only, so controllers with skewed clocks agree. The claim
runs in a write transaction, which the store serialises (provision.store.pgdb), so two controllers
racing for one host never both win. A holder id names the machine and pid and is unique per claim:
a second claim from the same process is refused too, as flock does.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from provision.model.errors import BadInput, HostLocked, StateError
from provision.store.hostlock import HOST_NAME_RE
from provision.store.pgconnection import PgConnection

DEFAULT_LEASE_S = 30.0


@dataclass(frozen=True)
class Lease:
    host: str
    holder: str
    acquired_at: str
    expires_at: float

    @property
    def expires(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")


def holder_id() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} ({secrets.token_hex(3)})"


def current_lease(conn: PgConnection, host: str) -> Lease | None:
    rows = conn.read("SELECT * FROM leases WHERE host = ?", (host,))
    if not rows:
        return None
    r = rows[0]
    return Lease(r["host"], r["holder"], r["acquired_at"], float(r["expires_at"]))


def claim(conn: PgConnection, host: str, holder: str, lease_s: float) -> Lease:
    """Take `host` for `holder`, or raise HostLocked naming the live holder and its expiry."""
    if not HOST_NAME_RE.match(host):
        raise BadInput(f"host: expected a host name of letters, digits, '.', '_' and '-', got {host!r}")
    if lease_s <= 0:
        raise BadInput(f"lease_s: expected a value > 0, got {lease_s}")
    with conn.write() as db:
        now_s = float(
            db.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS now").fetchone()["now"]
        )
        row = db.execute("SELECT holder, expires_at FROM leases WHERE host = ?", (host,)).fetchone()
        if row is not None and float(row["expires_at"]) > now_s and row["holder"] != holder:
            until = datetime.fromtimestamp(float(row["expires_at"]), UTC).isoformat(timespec="seconds")
            raise HostLocked(f"{host} is locked by {row['holder']} until {until} (another provision run?)")
        acquired = datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds")
        db.execute(
            "INSERT INTO leases (host, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(host) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, "
            "expires_at = excluded.expires_at",
            (host, holder, acquired, now_s + lease_s),
        )
    return Lease(host, holder, acquired, now_s + lease_s)


def renew(conn: PgConnection, host: str, holder: str, lease_s: float) -> bool:
    """Extend `holder`'s lease; False when it is no longer the holder (it expired and was taken)."""
    with conn.write() as db:
        changed = db.execute(
            "UPDATE leases SET expires_at = EXTRACT(EPOCH FROM clock_timestamp())::float8 + ? "
            "WHERE host = ? AND holder = ?",
            (lease_s, host, holder),
        ).rowcount
    return changed == 1


def release(conn: PgConnection, host: str, holder: str) -> None:
    with conn.write() as db:
        db.execute("DELETE FROM leases WHERE host = ? AND holder = ?", (host, holder))


@contextmanager
def host_lease(conn: PgConnection, host: str, lease_s: float = DEFAULT_LEASE_S) -> Iterator[None]:
    """Hold `host`'s lease for the block, renewed in the background; raise HostLocked at once if a
    live lease is another's. A renewal that finds the lease taken over stops renewing (the block's
    own steps are journaled, and the new holder resumes from the journal)."""
    holder = holder_id()
    claim(conn, host, holder, lease_s)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(lease_s / 3):
            try:
                if not renew(conn, host, holder, lease_s):
                    return
            except StateError:
                continue  # the database is away: try again next period; unrenewed, the lease expires

    renewer = threading.Thread(target=keep, name=f"lease-{host}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        # The database away: the lease expires by itself, and the block's own error stands.
        with suppress(StateError):
            release(conn, host, holder)
