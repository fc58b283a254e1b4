"""Hosts in the state store: each host's lifecycle state, the history of its transitions, the list.

A host row appears on its first state change or its first run; every change is also appended to
host_history with its reason, so the history tells how a host reached its state.
"""

from __future__ import annotations

from datetime import datetime

from provision.model.errors import TransitionRefused
from provision.store.connection import StoreConnection, now
from provision.store.lifecycle import HostRow, HostState, HostTransition, transition_allowed, ts


def get_host_state(conn: StoreConnection, host: str) -> HostState | None:
    rows = conn.read("SELECT state FROM hosts WHERE name = ?", (host,))
    return HostState(rows[0]["state"]) if rows else None


def set_host_state(conn: StoreConnection, host: str, state: HostState, reason: str = "") -> None:
    state = HostState(state)
    at = ts(now())
    with conn.write() as db:
        row = db.execute("SELECT state FROM hosts WHERE name = ?", (host,)).fetchone()
        previous = row["state"] if row else None
        if not transition_allowed(HostState(previous) if previous else None, state):
            raise TransitionRefused(
                f"{host}: state {previous} -> {state}: expected a transition the lifecycle allows, "
                f"got one it refuses ({reason or 'no reason given'})"
            )
        db.execute(
            "INSERT INTO hosts (name, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (host, str(state), at),
        )
        db.execute(
            "INSERT INTO host_history (host, previous, state, reason, at) VALUES (?, ?, ?, ?, ?)",
            (host, previous, str(state), reason, at),
        )


def host_history(conn: StoreConnection, host: str) -> list[HostTransition]:
    rows = conn.read("SELECT * FROM host_history WHERE host = ? ORDER BY id", (host,))
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


def list_hosts(conn: StoreConnection) -> list[HostRow]:
    return [
        HostRow(
            name=r["name"],
            state=HostState(r["state"]),
            updated_at=datetime.fromisoformat(r["updated_at"]),
            last_run_id=r["last_run_id"],
        )
        for r in conn.read("SELECT * FROM hosts ORDER BY name")
    ]
