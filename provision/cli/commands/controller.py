"""`provision controller`: a standing controller that takes over what other controllers left.

Every interval it scans the hosts of its scope (`--rack`, `--circle`, `--pdu`; none: every host),
claims each one whose run is unfinished and that no live controller holds (a lease that expired
because its holder died, or a run that stopped), and resumes it from its journal through the same
path as `provision host --all --take-over` (provision.flow.takeover). Several controllers may run
on one PostgreSQL store: the lease makes each host theirs one at a time, and a run finished by one
of them meanwhile is never started again by another.

Ctrl-C or SIGTERM: runs under way stop at their next wait and journal the interruption, their leases
are released (a host left is claimable at once), and the command exits 0.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import FrameType

import click

from provision.cli.app import App
from provision.cli.launch import FlowFailed, LaunchOptions, flow_options, launch
from provision.cli.takeover import TakeoverLines
from provision.flow.steps import build_steps
from provision.flow.takeover import Candidate, scan_state, scope_hosts
from provision.model.errors import BadInput, ProvisionError, StateError, VerdictFailed
from provision.store.lifecycle import RunStatus
from provision.store.state import StateStore

INTERRUPTED = 130


@dataclasses.dataclass
class _Tally:
    claimed: list[str] = dataclasses.field(default_factory=list)
    finished: list[str] = dataclasses.field(default_factory=list)
    stopped: list[str] = dataclasses.field(default_factory=list)
    held: set[str] = dataclasses.field(default_factory=set)
    passes: int = 0


def _report(app: App, claimed: Sequence[Candidate], lines: TakeoverLines, tally: _Tally) -> None:
    """After a pass: how each claimed host's run stands now, read from the store."""
    with StateStore.open(app.state_dir) as store:
        for c in claimed:
            run = store.get_run(c.run_id)
            state = store.get_host_state(c.host)
            if run.status is RunStatus.succeeded:
                tally.finished.append(c.host)
                lines.emit(
                    "finish",
                    f"{c.host}: run {run.id} succeeded; host {state or 'unknown'}",
                    host=c.host,
                    run_id=run.id,
                    host_state=str(state) if state else None,
                )
            else:
                tally.stopped.append(c.host)
                lines.emit(
                    "stopped",
                    f"{c.host}: run {run.id} {run.status}; a later pass resumes it",
                    host=c.host,
                    run_id=run.id,
                    run_status=str(run.status),
                )


def _one_pass(
    app: App,
    names: Sequence[str],
    opts: LaunchOptions,
    lines: TakeoverLines,
    tally: _Tally,
    stop: threading.Event,
    once: bool,
) -> bool:
    """Claim and resume what is free; True when the runs were interrupted by a signal."""
    found = scan_state(app.state_dir, names)
    tally.passes += 1
    tally.held |= {h.host for h in found.held}
    lines.scan(found)
    if not found.claimable or stop.is_set():
        return stop.is_set()
    tally.claimed += [c.host for c in found.claimable]
    interrupted = False
    # launch prints a fleet's table on stdout: here stdout is the controller's own lines.
    with redirect_stdout(sys.stderr):
        try:
            launch(app, [c.host for c in found.claimable], opts, build_steps, fleet=True)
        except FlowFailed as exc:
            # Hosts that stopped short: their outcome, reported below (130: a signal stopped them).
            interrupted = exc.exit_code == INTERRUPTED
        except VerdictFailed:
            pass  # rejected hosts: their outcome, reported below, not the controller's
        except ProvisionError as exc:
            if once or isinstance(exc, BadInput):
                raise
            lines.emit("error", f"{exc}; the next scan tries again", message=str(exc))
    _report(app, found.claimable, lines, tally)
    return interrupted


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Between passes: Ctrl-C or SIGTERM ends the loop (launch has its own handlers during a pass)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@click.command()
@click.option("--rack", "racks", multiple=True, metavar="R", help="Only hosts in rack R. Repeatable.")
@click.option("--circle", "circles", type=int, multiple=True, metavar="N", help="Only circle N. Repeatable.")
@click.option("--pdu", "pdus", multiple=True, metavar="P", help="Only hosts fed by PDU P. Repeatable.")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between scans.",
)
@click.option("--once", is_flag=True, help="One scan and its take-overs, then exit.")
@flow_options("provision")
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Per-host logs [default: STATE/logs/fleet-<time>, one per pass].",
)
@click.pass_obj
def controller(
    app: App,
    racks: tuple[str, ...],
    circles: tuple[int, ...],
    pdus: tuple[str, ...],
    interval_s: float,
    once: bool,
    log_dir: Path | None,
    opts: LaunchOptions,
) -> None:
    """Take over and finish the unfinished runs of the hosts in scope, pass after pass.

    A host is claimed when its run is unfinished and no live controller holds it (its lease
    expired or was released); it resumes from its journal: never a second install, never a
    repeated destructive disk test. Hosts outside --rack/--circle/--pdu are never claimed.
    Exit 0 when stopped (Ctrl-C, SIGTERM) or after --once; 2 bad input; 3 the store failed (--once).
    """
    if opts.restart_from:
        raise BadInput("--restart-from: expected none (a take-over only resumes), got " + opts.restart_from)
    names = [h.name for h in scope_hosts(app.catalog, racks, circles, pdus)]
    if not names:
        raise BadInput("controller: expected a scope with hosts, got none (the flags exclude each other)")
    lines = TakeoverLines(opts.as_json)
    # The runs' step progress goes to stderr (launch, not as JSON); stdout is the controller's lines.
    opts = dataclasses.replace(opts, resume_only=True, as_json=False, log_dir=log_dir)
    lines.emit(
        "controller",
        f"started: {len(names)} host(s) in scope, a scan every {interval_s:g} s",
        hosts=len(names),
        interval_s=interval_s,
    )
    tally = _Tally()
    stop = threading.Event()
    with _stop_on_signals(stop):
        while not stop.is_set():
            try:
                if _one_pass(app, names, opts, lines, tally, stop, once):
                    break
            except StateError as exc:
                if once:
                    raise
                lines.emit("error", f"{exc}; next scan in {interval_s:g} s", message=str(exc))
            if once:
                break
            stop.wait(interval_s)
    lines.emit(
        "summary",
        f"{tally.passes} pass(es): {len(tally.claimed)} claimed, {len(tally.finished)} finished, "
        f"{len(tally.stopped)} stopped, {len(tally.held)} held by others",
        passes=tally.passes,
        claimed=tally.claimed,
        finished=tally.finished,
        stopped=tally.stopped,
        held=sorted(tally.held),
    )
