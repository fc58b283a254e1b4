"""`provision status [HOST]`: the lifecycle state of every host (never seen: enrolled), or one host's
state, its history and its recent runs with their steps. `--watch`: the fleet live (provision.cli.fleetview),
refreshed every `--interval` seconds until Ctrl-C."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from provision.cli.app import App, emit
from provision.cli.fleetview import FleetLine, fleet_lines, plain_line, render_table, snapshot
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


def _watch_lines(app: App, only: str | None, store: StateStore | None) -> tuple[list[FleetLine], datetime]:
    now = datetime.now(UTC)
    lines = fleet_lines(store, [only] if only else app.catalog.hosts, now)
    return [x for x in lines if only is None or x.host == only], now


def _watch(app: App, only: str | None, interval_s: float, mode: str) -> None:
    """Refresh until Ctrl-C. The store is opened once it exists (a fleet may not have started yet)."""
    store: StateStore | None = None
    printed: dict[str, tuple[Any, ...]] = {}
    live: Live | None = None
    if mode == "rich":
        live = Live(console=Console(), auto_refresh=False, redirect_stdout=False)
        live.start()
    try:
        while True:
            if store is None:
                store = StateStore.open_existing(app.state_dir)
            lines, now = _watch_lines(app, only, store)
            if live is not None:
                live.update(render_table(lines, now, "fleet"), refresh=True)
            elif mode == "json":
                sys.stdout.write(json.dumps(snapshot(lines, now), default=str) + "\n")
            else:
                for line in lines:
                    if printed.get(line.host) != line.change_key():
                        printed[line.host] = line.change_key()
                        sys.stdout.write(plain_line(line, now) + "\n")
            sys.stdout.flush()
            time.sleep(interval_s)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: exit 0
    finally:
        if live is not None:
            live.stop()
        if store is not None:
            store.close()


@click.command()
@click.argument("host", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --watch: one object per refresh).")
@click.option("--watch", is_flag=True, help="Show the fleet live until Ctrl-C: a table on a terminal.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between refreshes of --watch.",
)
@click.option("--plain", is_flag=True, help="With --watch: plain lines, one per change, even on a terminal.")
@click.pass_obj
def status(app: App, host: str | None, as_json: bool, watch: bool, interval: float, plain: bool) -> None:
    """Lifecycle state of every host, or of HOST with its recent runs.

    --watch: host, state, current step, what it waits for, elapsed time of its run and verdict,
    refreshed every --interval seconds (HOST: that host only); Ctrl-C ends it (exit 0).
    """
    if watch:
        only = app.catalog.host(host).name if host else None
        mode = "json" if as_json else "plain" if plain or not sys.stdout.isatty() else "rich"
        _watch(app, only, interval, mode)
    elif host is None:
        emit(_all(app), as_json, _human_all)
    else:
        emit(_one(app, host), as_json, _human_one)
