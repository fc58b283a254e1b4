"""Install tokens in the state store: a secret issued for one run on one host, with an expiry.

The token goes into the installer's configuration and comes back with its callbacks to the boot
server; it is never stored: the database keeps only its sha256, so a copy of the state dir grants
nothing. A token is valid until it expires or is revoked, and never for a run that succeeded;
finishing a run revokes its tokens, except a run stopped by an error that a rerun resumes (see
`provision.store.runs.finish_run`), whose install may still call back.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from provision.model.errors import BadInput
from provision.store.connection import StoreConnection
from provision.store.lifecycle import Run, RunStatus
from provision.store.runs import get_run, run_from_row


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: StoreConnection, run_id: str, host: str, ttl_s: float) -> str:
    if ttl_s <= 0:
        raise BadInput(f"token ttl_s: expected a value > 0, got {ttl_s}")
    get_run(conn, run_id)
    token = secrets.token_urlsafe(32)
    with conn.write() as db:
        db.execute(
            "INSERT INTO tokens (sha256, run_id, host, expires_at) VALUES (?, ?, ?, ?)",
            (_digest(token), run_id, host, time.time() + ttl_s),
        )
    return token


def check_token(conn: StoreConnection, host: str, token: str) -> Run | None:
    """The unfinished run `token` was issued for, if it is valid for `host`; None otherwise."""
    rows = conn.read(
        "SELECT runs.* FROM tokens JOIN runs ON runs.id = tokens.run_id "
        "WHERE tokens.sha256 = ? AND tokens.host = ? AND tokens.revoked = 0 AND tokens.expires_at > ? "
        "AND runs.status != ? AND runs.host = ?",
        (_digest(token), host, time.time(), str(RunStatus.succeeded), host),
    )
    return run_from_row(rows[0]) if rows else None


def revoke_tokens(conn: StoreConnection, run_id: str) -> None:
    with conn.write() as db:
        db.execute("UPDATE tokens SET revoked = 1 WHERE run_id = ?", (run_id,))
