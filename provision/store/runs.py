"""Runs in the state store: one row per run of a kind (inspect, install, burn-in...) on a host.

A run starts `running` and ends as succeeded, failed or interrupted; ending it also revokes the
install tokens issued for it, so no callback can act on a finished run. A provisioning run stopped by
an error keeps them (`keep_tokens`): a rerun reopens it (`running` again) and resumes it, and the
install it started may call back meanwhile. Its steps and events are in
`provision.store.journal`.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from provision.model.errors import BadInput, NotFound
from provision.store.connection import Row, StoreConnection, now
from provision.store.lifecycle import HostState, Run, RunStatus, dt, ts


def run_from_row(row: Row) -> Run:
    return Run(
        id=row["id"],
        host=row["host"],
        kind=row["kind"],
        status=RunStatus(row["status"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        ended_at=dt(row["ended_at"]),
    )


def create_run(conn: StoreConnection, host: str, kind: str) -> Run:
    started = now()
    with conn.write() as db:
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


def get_run(conn: StoreConnection, run_id: str) -> Run:
    rows = conn.read("SELECT * FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise NotFound(f"run: expected a known run id, got {run_id!r}")
    return run_from_row(rows[0])


def list_runs(conn: StoreConnection, host: str | None = None, kind: str | None = None) -> list[Run]:
    sql, args = "SELECT * FROM runs WHERE 1 = 1", list[str]()
    if host is not None:
        sql, args = sql + " AND host = ?", [*args, host]
    if kind is not None:
        sql, args = sql + " AND kind = ?", [*args, kind]
    return [run_from_row(r) for r in conn.read(sql + " ORDER BY started_at, id", tuple(args))]


def latest_run(conn: StoreConnection, host: str, kind: str | None = None) -> Run | None:
    runs = list_runs(conn, host, kind)
    return runs[-1] if runs else None


def finish_run(conn: StoreConnection, run_id: str, status: RunStatus, keep_tokens: bool = False) -> Run:
    status = RunStatus(status)
    if status is RunStatus.running:
        raise BadInput(f"run {run_id}: status: expected succeeded, failed or interrupted, got running")
    if keep_tokens and status is RunStatus.succeeded:
        raise BadInput(f"run {run_id}: keep_tokens: expected a failed or interrupted run, got succeeded")
    with conn.write() as db:
        changed = db.execute(
            "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (str(status), ts(now()), run_id)
        ).rowcount
        if not keep_tokens:
            db.execute("UPDATE tokens SET revoked = 1 WHERE run_id = ?", (run_id,))
    if not changed:
        raise NotFound(f"run: expected a known run id, got {run_id!r}")
    return get_run(conn, run_id)


def reopen_run(conn: StoreConnection, run_id: str) -> Run:
    with conn.write() as db:
        changed = db.execute(
            "UPDATE runs SET status = ?, ended_at = NULL WHERE id = ? AND status != ?",
            (str(RunStatus.running), run_id, str(RunStatus.succeeded)),
        ).rowcount
    run = get_run(conn, run_id)
    if not changed and run.status is not RunStatus.running:
        raise BadInput(f"run {run_id}: expected a run that did not succeed, got {run.status}")
    return run


def interrupt_stale_runs(conn: StoreConnection, host: str) -> list[Run]:
    """Mark `host`'s runs still `running` as interrupted; call it holding host_lock(host), which
    proves that no live process owns them (their process died without finishing them)."""
    stale = [r for r in list_runs(conn, host) if r.status is RunStatus.running]
    for run in stale:
        finish_run(conn, run.id, RunStatus.interrupted)
    return [get_run(conn, r.id) for r in stale]
