"""Adapter: find a host's burn-in runs in the state store and read them as run files, and keep the
acceptance record and the host's state there.

A run's documents live in one directory (state_dir/runs/<run_id>/), named as provision.acceptance.runfiles
says: result.json (the agent's RunResult), inventory-redfish.json, telemetry.jsonl, and
acceptance.json (the record this module stores). Every file is checked against the digest the
store recorded, so a report never signs evidence that changed after collection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provision.acceptance.evaluation import Acceptance
from provision.acceptance.runfiles import RECORD_FILE, RESULT_FILE, RunFiles, load_run_dir
from provision.acceptance.timeseries import DEFAULT_SUMS
from provision.acceptance.validation import RunVerdict
from provision.model.errors import BadInput, NotFound, StateError
from provision.store.state import HostState, Run, StateStore


def open_store(state_dir: Path, writable: bool = False) -> StateStore:
    """The existing store: read-only (a reader never creates, migrates or writes it), or `writable`
    for a command that keeps what it decided there (an acceptance record, a handed-off state)."""
    store = StateStore.open_existing_for_write(state_dir) if writable else StateStore.open_existing(state_dir)
    if store is None:
        raise NotFound(f"{state_dir}: expected a state store with this host's runs, got none")
    return store


def _names(store: StateStore, run_id: str) -> set[str]:
    return {d.name for d in store.documents(run_id)}


def find_run(store: StateStore, host: str, run_id: str | None, needs: str = RESULT_FILE) -> Run:
    """The run asked for, or the host's newest run holding `needs` (a burn-in result by default)."""
    if run_id is not None:
        run = store.get_run(run_id)
        if run.host != host:
            raise BadInput(f"--run {run_id}: expected a run of {host}, got a run of {run.host}")
        if needs not in _names(store, run_id):
            raise NotFound(f"run {run_id}: expected a {needs} document, got none")
        return run
    for run in reversed(store.list_runs(host)):
        if needs in _names(store, run.id):
            return run
    raise NotFound(f"{host}: expected a run holding {needs}, got none")


def load_run(store: StateStore, run: Run, sums: Iterable[tuple[str, ...]] = DEFAULT_SUMS) -> RunFiles:
    refs = {d.name: d for d in store.documents(run.id)}
    if not refs:
        raise NotFound(f"run {run.id}: expected documents, got none")
    directory = next(iter(refs.values())).path.parent
    files = load_run_dir(directory, sums)
    for raw in files.raw:
        ref = refs.get(raw.path)
        if ref is not None and ref.sha256 != raw.sha256:
            raise StateError(
                f"{directory / raw.path}: expected sha256 {ref.sha256}, got a file that changed since"
            )
    if files.run.host != run.host:
        raise BadInput(f"{directory / RESULT_FILE}: host: expected {run.host!r}, got {files.run.host!r}")
    return files


def stored_record(store: StateStore, run_id: str) -> dict[str, Any] | None:
    if RECORD_FILE not in _names(store, run_id):
        return None
    data = json.loads(store.get_document(run_id, RECORD_FILE))
    return data if isinstance(data, dict) else None


def newer_run(store: StateStore, host: str, run_id: str) -> Run | None:
    """The host's newest run started after `run_id`, if any: its state belongs to that run now."""
    runs = store.list_runs(host)  # in the order they started
    ids = [r.id for r in runs]
    later = runs[ids.index(run_id) + 1 :] if run_id in ids else []
    return later[-1] if later else None


def keep_acceptance(store: StateStore, host: str, run_id: str, acc: Acceptance) -> str | None:
    """Store the record with its run and move the host to accepted or rejected. An inconclusive run
    leaves the state as it was (it proves nothing either way) and says so in an event; so does a run
    older than the host's newest one (a re-judged old run never moves a host past a newer run).
    Returns why the state was left as it was, or None when it moved."""
    store.put_document(run_id, RECORD_FILE, acc.record)
    counts = acc.record["counts"]
    later = newer_run(store, host, run_id)
    kept: str | None = None
    if later is not None:
        kept = f"run {later.id} is newer than run {run_id}: the host's state is that run's"
    elif acc.verdict is RunVerdict.inconclusive:
        kept = f"run {run_id} is inconclusive: it proves nothing either way"
    payload: dict[str, Any] = {"verdict": acc.verdict.value, **counts}
    if kept:
        payload["state_kept"] = kept
    store.add_event(host, "acceptance", payload, run_id=run_id)
    if kept:
        return kept
    if acc.verdict is RunVerdict.accepted:
        store.set_host_state(host, HostState.accepted, f"run {run_id} accepted")
    else:
        store.set_host_state(host, HostState.rejected, f"run {run_id}: {counts['fail']} check(s) failed")
    return None
