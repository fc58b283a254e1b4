"""Take-over: which hosts a controller resumes for another that stopped or died.

A host is taken over when its latest provision/reinstall run is unfinished (running, failed or
interrupted) and nobody holds it: no live lease on the shared store (the holder died and nobody
renewed it, or it finished and released it), no flock on SQLite. The work itself is the ordinary
resume (provision.flow.hostrun.run_host with `resume_only`): under the host's lease, the run is
continued from its journal, so a completed install or destructive disk test is never repeated, and a
run that another controller finished in the meantime is left alone instead of started again.

Scope (`--rack`, `--circle`, `--pdu`): a controller limited to part of the fleet never claims a host
outside it. Several values of one flag add up (rack A or rack B); different flags narrow each other
(rack A and circle 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.flow.engine import plan
from provision.flow.hostrun import journal_records, resumable_run
from provision.model.catalog import Catalog
from provision.model.errors import BadInput, HostLocked
from provision.model.hosts import Host
from provision.store.state import StateStore


@dataclass(frozen=True)
class Candidate:
    """A host a take-over claims: its unfinished run, how that run was left, where it resumes."""

    host: str
    run_id: str
    run_status: str  # running (its controller is gone), failed or interrupted
    next_step: str | None  # the first step the journal does not show complete


@dataclass(frozen=True)
class Held:
    """A host with an unfinished run that a live controller holds: not ours to take."""

    host: str
    by: str  # the lock's own words: the holder and, on a lease, until when


@dataclass(frozen=True)
class Scan:
    claimable: tuple[Candidate, ...]
    held: tuple[Held, ...]
    finished: int  # hosts in scope with no unfinished run


def _pick(hosts: list[Host], flag: str, wanted: Sequence[str], value: dict[str, str]) -> list[Host]:
    if not wanted:
        return hosts
    known = sorted(set(value.values()))
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise BadInput(f"{flag}: expected one of {', '.join(known)}, got {unknown[0]!r}")
    return [h for h in hosts if value[h.name] in wanted]


def scope_hosts(
    catalog: Catalog, racks: Sequence[str] = (), circles: Sequence[int] = (), pdus: Sequence[str] = ()
) -> list[Host]:
    """The hosts of the scope, in name order; no flag at all is the whole inventory."""
    hosts = sorted(catalog.hosts.values(), key=lambda h: h.name)
    everyone = list(catalog.hosts.values())
    hosts = _pick(hosts, "--rack", racks, {h.name: h.rack for h in everyone})
    circle_of = {h.name: str(catalog.profile_of(h).platform.circle) for h in everyone}
    hosts = _pick(hosts, "--circle", [str(c) for c in circles], circle_of)
    return _pick(hosts, "--pdu", pdus, {h.name: h.pdu for h in everyone})


def _probe(store: StateStore, host: str) -> str | None:
    """Who holds `host` now, or None when it is free (a lease expired counts as free)."""
    try:
        with store.host_lock(host):
            return None
    except HostLocked as exc:
        return str(exc)


def scan(store: StateStore, hosts: Sequence[str]) -> Scan:
    """Sort the hosts of the scope: unfinished and free (to claim), unfinished and held, finished."""
    claimable: list[Candidate] = []
    held: list[Held] = []
    finished = 0
    for host in hosts:
        run = resumable_run(store, host)
        if run is None:
            finished += 1
            continue
        by = _probe(store, host)
        if by is not None:
            held.append(Held(host, by))
            continue
        todo = [p.step.name.value for p in plan(journal_records(store, run.id)) if p.run]
        claimable.append(Candidate(host, run.id, str(run.status), todo[0] if todo else None))
    return Scan(tuple(claimable), tuple(held), finished)


def scan_state(state: Path | str, hosts: Sequence[str]) -> Scan:
    """`scan` on the store at `state`; a store never created has nothing to take over."""
    store = StateStore.open_existing_for_write(state)
    if store is None:
        return Scan((), (), len(hosts))
    with store:
        return scan(store, hosts)
