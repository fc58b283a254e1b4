"""The journal of a run in the state store: its steps with their outcome and evidence, and events.

A step row opens when the step starts and closes when it ends; a step that ends with no open row
(finished without a recorded start) is kept as a zero-length row. The latest attempt of each step is
what tells a resumed run which steps it need not redo. Events record what happened to a host (install
callbacks, verdicts), tied to a run where there is one, in arrival order.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from provision.store.connection import StoreConnection, now
from provision.store.lifecycle import EventRow, StepOutcome, StepRow, dt, ts
from provision.store.runs import get_run


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def step_started(conn: StoreConnection, run_id: str, step: str) -> None:
    get_run(conn, run_id)
    with conn.write() as db:
        db.execute("INSERT INTO steps (run_id, step, started_at) VALUES (?, ?, ?)", (run_id, step, ts(now())))


def step_finished(
    conn: StoreConnection,
    run_id: str,
    step: str,
    outcome: StepOutcome,
    evidence: dict[str, Any] | None = None,
    message: str = "",
) -> None:
    outcome = StepOutcome(outcome)
    get_run(conn, run_id)
    at = ts(now())
    blob = _json(evidence) if evidence is not None else None
    with conn.write() as db:
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


def steps(conn: StoreConnection, run_id: str) -> list[StepRow]:
    return [
        StepRow(
            step=r["step"],
            started_at=datetime.fromisoformat(r["started_at"]),
            ended_at=dt(r["ended_at"]),
            outcome=StepOutcome(r["outcome"]) if r["outcome"] else None,
            message=r["message"],
            evidence=json.loads(r["evidence"]) if r["evidence"] else None,
        )
        for r in conn.read("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,))
    ]


def completed_steps(conn: StoreConnection, run_id: str) -> set[str]:
    """Steps whose latest attempt ended ok or skipped: what a resumed run need not redo."""
    latest: dict[str, StepOutcome | None] = {}
    for row in steps(conn, run_id):
        latest[row.step] = row.outcome
    return {s for s, o in latest.items() if o in (StepOutcome.ok, StepOutcome.skipped)}


def add_event(
    conn: StoreConnection, host: str, kind: str, payload: dict[str, Any], run_id: str | None = None
) -> None:
    with conn.write() as db:
        db.execute(
            "INSERT INTO events (host, run_id, kind, payload, at) VALUES (?, ?, ?, ?, ?)",
            (host, run_id, kind, _json(payload), ts(now())),
        )


def events(
    conn: StoreConnection, host: str | None = None, run_id: str | None = None, kind: str | None = None
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
        for r in conn.read(sql + " ORDER BY id", tuple(args))
    ]
