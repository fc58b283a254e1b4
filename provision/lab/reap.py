"""Which labs `lab up` must reap first: labs left behind by an owner that died (a test run killed
with SIGKILL, a `lab up` killed half way) or whose processes died, found through this lab's own
ledger and the machine's registry of ledgers (provision.lab.ledger.REGISTRY). Pure decisions over
ledgers and /proc; the teardown itself is `provision.lab.lab`'s, by PID as `lab down` does it.

A lab is stale when
- its ledger names an owner (the process running `up`, or one whose lab must not outlive it) and that
  process is gone: nobody will ever take the lab down;
- it has no owner (a lab `provision lab up` left running for later commands) and its processes died:
  for the lab being brought up, any of them (it is broken and would be refused as "up" otherwise);
  for another lab, all of them (one dead daemon does not make someone else's lab ours to stop);
- it is the lab being brought up and its last `up` never finished.
A lab that is not stale is left alone, and one with the id being brought up stops `up` with one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision.lab import ledger as ledgers
from provision.lab import system
from provision.lab.ledger import LEDGER, Ledger, load
from provision.model.errors import BadInput


@dataclass(frozen=True)
class Stale:
    ledger: Ledger
    why: str


def owner_alive(ledger: Ledger) -> bool | None:
    """None when the ledger names no owner."""
    if ledger.owner_pid is None:
        return None
    return system.start_time(ledger.owner_pid) == ledger.owner_start


def dead_procs(ledger: Ledger) -> list[str]:
    """The recorded processes no longer running their program, as `name (pid N)`."""
    dead = []
    for p in ledger.procs:
        pid = (_current_dnsmasq(ledger) or p.pid) if p.name == "dnsmasq" else p.pid
        if not system.is_ours(pid, p.program):
            dead.append(f"{p.name} (pid {pid})")
    return dead


def _current_dnsmasq(ledger: Ledger) -> int:
    # The DHCP supervisor restarts dnsmasq, so the ledger's PID may be an earlier one.
    try:
        return int((Path(ledger.directory) / "dnsmasq.pid").read_text().strip())
    except (OSError, ValueError):
        return 0


def why_stale(ledger: Ledger, own: bool) -> str | None:
    """Why `ledger`'s lab may be reaped, or None when it must be left alone. `own`: it is the lab
    being brought up."""
    if not _holds_anything(ledger):
        return None  # taken down already: nothing to reap, nothing in the way
    alive = owner_alive(ledger)
    if alive is not None:
        return None if alive else f"its owner, pid {ledger.owner_pid}, is gone"
    dead = dead_procs(ledger)
    if own and not ledger.up:
        return "its last `lab up` never finished"
    if own and dead:
        return f"{', '.join(dead)} no longer running"
    if not own and len(dead) == len(ledger.procs):
        return "none of its processes is running" if dead else "nothing of it is running"
    return None


def _in_use(ledger: Ledger, lab_id: str) -> BadInput:
    state = Path(ledger.directory).parent.parent
    if owner_alive(ledger):
        return BadInput(f"lab {lab_id}: expected it down, got it in use by pid {ledger.owner_pid}")
    return BadInput(
        f"lab {lab_id}: expected it down, got it up in {state} "
        f"(run `provision --state {state} lab down --id {lab_id}` first)"
    )


def _registered() -> list[Ledger]:
    found = []
    with contextlib.suppress(OSError):
        for entry in sorted(ledgers.REGISTRY.glob("*.json")):
            with contextlib.suppress(BadInput):  # a copy we cannot read is no proof of anything
                ledger = load(entry)
                if ledger is not None:
                    found.append(ledger)
    return found


def stale_labs(root: Path, lab_id: str) -> list[Stale]:
    """The labs to reap before lab `lab_id` comes up in `root`; BadInput when that lab is up and
    well (here or, with the same id, in another state directory)."""
    out: list[Stale] = []
    own = load(root / LEDGER)
    seen = {str(root)}
    if own is not None:
        why = why_stale(own, own=True)
        if why is not None:
            out.append(Stale(own, why))
        elif _holds_anything(own):
            raise _in_use(own, lab_id)
    for ledger in _registered():
        if ledger.directory in seen:
            continue
        seen.add(ledger.directory)
        # The ledger in the lab's directory is newer than the registry's copy when both exist.
        current = _load_quietly(Path(ledger.directory) / LEDGER) or ledger
        why = why_stale(current, own=False)
        if why is not None:
            out.append(Stale(current, why))
        elif current.lab_id == lab_id and _holds_anything(current):  # its namespaces have our names
            raise _in_use(current, lab_id)
    return out


def reap(
    root: Path, lab_id: str, take_down: Callable[[Ledger], list[str]], say: Callable[[str], None]
) -> list[str]:
    """Take each stale lab down; one line for each, said as it goes and returned."""
    lines = []
    for stale in stale_labs(root, lab_id):
        done = take_down(stale.ledger)
        where = f"lab {stale.ledger.lab_id} ({stale.ledger.directory})"
        lines.append(f"{where}: stale, {stale.why}: {', '.join(done) or 'nothing was running'}")
        say(lines[-1])
    return lines


def _holds_anything(ledger: Ledger) -> bool:
    return bool(ledger.procs or ledger.netns or ledger.domains)


def _load_quietly(path: Path) -> Ledger | None:
    try:
        return load(path)
    except BadInput:
        return None
