"""`provision status [HOST]`: the lifecycle state of every host (never seen: enrolled), or one host's
state, its history and its recent runs with their steps."""

from __future__ import annotations

from typing import Any

import click

from provision.cli.app import App, emit
from provision.store.lifecycle import HostState
from provision.store.state import StateStore

RECENT_RUNS = 5


def _all(app: App) -> dict[str, Any]:
    catalog = app.catalog
    store = StateStore.open_existing(app.state_dir)
    rows = {}
    if store is not None:
        with store:
            rows = {r.name: r for r in store.list_hosts()}
    hosts = []
    for name in sorted(set(catalog.hosts) | set(rows)):
        row = rows.get(name)
        host = catalog.hosts.get(name)
        hosts.append(
            {
                "name": name,
                "in_inventory": host is not None,
                "profile": host.profile if host else None,
                "rack": host.rack if host else None,
                "state": str(row.state) if row else str(HostState.enrolled),
                "updated_at": row.to_dict()["updated_at"] if row else None,
                "last_run_id": row.last_run_id if row else None,
            }
        )
    return {"hosts": hosts}


def _one(app: App, name: str) -> dict[str, Any]:
    host = app.catalog.host(name)
    out: dict[str, Any] = {
        "name": host.name,
        "profile": host.profile,
        "rack": host.rack,
        "state": str(HostState.enrolled),
        "updated_at": None,
        "history": [],
        "runs": [],
    }
    store = StateStore.open_existing(app.state_dir)
    if store is None:
        return out
    with store:
        state = store.get_host_state(name)
        if state is not None:
            out["state"] = str(state)
        history = store.host_history(name)
        if history:
            out["updated_at"] = history[-1].at.isoformat()
        out["history"] = [
            {
                "at": h.at.isoformat(),
                "from": str(h.previous) if h.previous else None,
                "to": str(h.state),
                "reason": h.reason,
            }
            for h in history
        ]
        runs = store.list_runs(name)[-RECENT_RUNS:]
        out["runs"] = [
            {**run.to_dict(), "steps": [s.to_dict() for s in store.steps(run.id)]} for run in reversed(runs)
        ]
    return out


def _human_all(data: dict[str, Any]) -> str:
    lines = [f"{'HOST':<26} {'STATE':<13} {'PROFILE':<17} {'LAST RUN':<22} UPDATED"]
    for h in data["hosts"]:
        profile = h["profile"] or "(not in inventory)"
        lines.append(
            f"{h['name']:<26} {h['state']:<13} {profile:<17} {h['last_run_id'] or '-':<22} "
            f"{h['updated_at'] or '-'}"
        )
    return "\n".join(lines)


def _human_one(data: dict[str, Any]) -> str:
    lines = [f"{data['name']}: {data['state']} (profile {data['profile']}, rack {data['rack']})"]
    for h in data["history"][-RECENT_RUNS:]:
        why = f": {h['reason']}" if h["reason"] else ""
        lines.append(f"  {h['at']}  {h['from'] or '-'} -> {h['to']}{why}")
    if not data["runs"]:
        lines.append("  no runs yet")
    for run in data["runs"]:
        lines.append(f"  run {run['id']}  {run['kind']}  {run['status']}  started {run['started_at']}")
        for step in run["steps"]:
            outcome = step["outcome"] or "running"
            message = f"  {step['message']}" if step["message"] else ""
            lines.append(f"    {step['step']:<18} {outcome:<8}{message}")
    return "\n".join(lines)


@click.command()
@click.argument("host", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(app: App, host: str | None, as_json: bool) -> None:
    """Lifecycle state of every host, or of HOST with its recent runs."""
    if host is None:
        emit(_all(app), as_json, _human_all)
    else:
        emit(_one(app, host), as_json, _human_one)
