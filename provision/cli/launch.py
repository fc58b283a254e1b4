"""What `provision host` and `provision reinstall` share: options to requests, the progress view,
signals, one host or a fleet, and the exit code.

Signals: the first Ctrl-C (or SIGTERM) asks every run to stop at its next wait; each journals the
interruption and its host keeps the state it had. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import dataclasses
import functools
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from provision.cli.app import App
from provision.cli.progress import JsonProgress, RichProgress
from provision.flow.admission import Admission, pdu_budgets
from provision.flow.engine import STEP_NAMES, Cancel, Progress, StepFn, StepName, Summary, parse_step
from provision.flow.fleet import FleetRow, run_fleet, summary_table
from provision.flow.hostrun import RunRequest, run_host
from provision.flow.logprogress import PlainProgress
from provision.flow.metrics import observed_progress
from provision.install.bootserver import BootServer
from provision.model.errors import BadInput, ProvisionError, VerdictFailed
from provision.model.profile import Timeouts
from provision.pdu.watch import watch_pdus
from provision.store.state import StateStore
from provision.store.storeurl import is_postgres

StepsBuilder = Callable[..., dict[StepName, StepFn]]


class FlowFailed(ProvisionError):
    """A host's run stopped at a step; the exit code is that of the error that stopped it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LaunchOptions:
    kind: str = "provision"
    yes: bool = False
    restart_from: str | None = None
    timeouts: tuple[str, ...] = ()  # NAME=SECONDS
    plan: str = "acceptance"
    parallel: int | None = None  # hosts in flight at most (fleets); None: all
    limits: dict[str, int] = field(default_factory=dict)  # --bmc-requests etc. over site.limits
    log_dir: Path | None = None
    as_json: bool = False
    listen: str | None = None  # the embedded boot server's address; default: the site's boot_server_url
    serve: bool = True  # False: a `provision serve` elsewhere answers the installers
    metrics_listen: str | None = None  # serve Prometheus metrics there (provision.flow.metrics)
    resume_only: bool = False  # take-over: continue unfinished runs only (provision.flow.takeover)
    extras: dict[str, Any] = field(default_factory=dict)


def flow_options(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options `host` and `reinstall` share, handed to the command as one `opts: LaunchOptions`
    of this kind (the command adds its own: --yes, and a fleet's --parallel and --log-dir)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def with_options(
            *args: Any,
            as_json: bool,
            restart_from: str | None,
            timeouts: tuple[str, ...],
            plan: str,
            kubeconfig: str | None,
            identity: str | None,
            agent_dir: str,
            listen: str | None,
            no_serve: bool,
            metrics_listen: str | None,
            **kwargs: Any,
        ) -> None:
            opts = LaunchOptions(
                kind=kind,
                restart_from=restart_from,
                timeouts=timeouts,
                plan=plan,
                as_json=as_json,
                listen=listen,
                serve=not no_serve,
                metrics_listen=metrics_listen,
                extras={"kubeconfig": kubeconfig, "ssh_key": identity, "agent_dir": agent_dir},
            )
            command(*args, opts=opts, **kwargs)

        return _add_flow_options(with_options)

    return decorate


def _add_flow_options(f: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option("--json", "as_json", is_flag=True, help="Print JSON progress and result."),
            click.option(
                "--restart-from",
                metavar="STEP",
                help=f"Run STEP and every later step again ({', '.join(STEP_NAMES)}).",
            ),
            click.option(
                "--timeout",
                "timeouts",
                multiple=True,
                metavar="NAME=SECONDS",
                help="Override one of the profile's timeouts (power_s, install_start_s, install_s, ssh_s, "
                "burnin_margin_s, collect_s, poll_s). Repeatable.",
            ),
            click.option(
                "--plan",
                type=click.Choice(["quick", "acceptance"]),
                default="acceptance",
                show_default=True,
                help="The profile's burn-in plan to run.",
            ),
            click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Hand off to this cluster."),
            click.option(
                "--identity",
                type=click.Path(dir_okay=False),
                help="SSH private key for the installed hosts [default: the user's keys and agent].",
            ),
            click.option(
                "--agent-dir",
                metavar="DIR",
                default="/var/lib/inferno-burnin",
                show_default=True,
                help="Where the burn-in agent and its runs live on the installed host.",
            ),
            click.option(
                "--listen",
                metavar="ADDRESS:PORT",
                help="Where the embedded boot server listens [default: the site's boot_server_url].",
            ),
            click.option(
                "--no-serve",
                is_flag=True,
                help="Do not embed the boot server (a `provision serve` answers the installers).",
            ),
            click.option(
                "--metrics-listen",
                metavar="ADDRESS:PORT",
                help="Serve Prometheus metrics on http://ADDRESS:PORT/metrics while running [default: off].",
            ),
        ]
    ):
        f = option(f)
    return f


def listen_address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--listen: expected ADDRESS:PORT like 127.0.0.1:8080, got {listen!r}")
    return host.strip("[]"), int(port)


def apply_timeouts(base: Timeouts, specs: Sequence[str]) -> Timeouts:
    """`--timeout install_s=3600` over the profile's timeouts; a wrong name or value is one line."""
    names = list(Timeouts.model_fields)
    updates: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or name not in names:
            raise BadInput(
                f"--timeout: expected NAME=SECONDS with NAME one of {', '.join(names)}, got {spec!r}"
            )
        updates[name] = value
    try:
        return Timeouts.model_validate({**base.model_dump(), **updates})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(
            f"--timeout {err['loc'][0]}: expected a number of seconds > 0, got {err['input']!r}"
        ) from None


@contextmanager
def stop_on_signals(cancel: Cancel) -> Iterator[None]:
    """First SIGINT/SIGTERM: cancel (clean stop at the next wait). Second: KeyboardInterrupt."""

    def handler(signum: int, frame: FrameType | None) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if cancel.is_set:
            raise KeyboardInterrupt
        cancel.set(name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _progress(stack: ExitStack, as_json: bool) -> Progress:
    if as_json:
        return JsonProgress(sys.stdout)
    if sys.stderr.isatty():
        return stack.enter_context(RichProgress())
    return PlainProgress(sys.stderr)


def launch(
    app: App,
    hosts: Sequence[str],
    opts: LaunchOptions,
    build_steps: StepsBuilder,
    fleet: bool,
) -> None:
    """Run one host (or a fleet) to the end; print the summary; raise what sets the exit code."""
    restart = parse_step(opts.restart_from) if opts.restart_from else None
    for name in hosts:
        entry = app.catalog.host(name)
        apply_timeouts(
            app.catalog.profile_of(entry).timeouts, opts.timeouts
        )  # bad input before anything runs
    store = StateStore.open(app.state_dir)
    cancel = Cancel()
    site = app.catalog.site
    # The boot server renders from this copy: render_kickstart pins each host's boot disks in it.
    boot_catalog = dataclasses.replace(app.catalog, hosts=dict(app.catalog.hosts))
    boot_url = site.boot_server_url
    netboot_dir = app.files_dir / "netboot"
    limits = site.limits.model_copy(update=opts.limits)
    feeds = ((h.pdu, app.catalog.profile_of(h)) for h in app.catalog.hosts.values())
    # On a shared PostgreSQL store every controller counts against the same budgets (one
    # transaction per acquire); one controller over SQLite keeps them in memory.
    ledger = store.ledger() if is_postgres(app.state_dir) else None
    with ExitStack() as stack:
        stack.callback(store.close)
        # The hosts' PDUs the site declares are read in the background: a fresh reading counts in
        # the power gate beside the profiles' estimate (provision.flow.admission).
        pdus = {app.catalog.host(h).pdu for h in hosts}
        measured = stack.enter_context(watch_pdus(site.pdus, pdus))
        admission = Admission(limits, pdu_budgets(feeds, limits), ledger=ledger, measured=measured)
        if opts.serve:
            split = urlsplit(boot_url)
            listen = listen_address(opts.listen or f"{split.hostname}:{split.port or 80}")
            images = Path(site.boot_images_dir) if site.boot_images_dir else None
            stack.enter_context(
                BootServer(boot_catalog, store, listen, public_url=boot_url, images_dir=images)
            )
        progress = _progress(stack, opts.as_json)
        progress = observed_progress(stack, progress, store, app.catalog.hosts, opts.metrics_listen)

        def run_one(host: str, prog: Progress, cancel: Cancel) -> Summary:
            entry = app.catalog.host(host)
            profile = app.catalog.profile_of(entry)
            timeouts = apply_timeouts(profile.timeouts, opts.timeouts)
            req = RunRequest(
                host=host,
                kind=opts.kind,
                yes=opts.yes,
                restart_from=restart,
                options={"plan": opts.plan, "timeouts": list(opts.timeouts)},
                resume_only=opts.resume_only,
            )

            def make(run: Any, facts: dict[str, Any]) -> dict[StepName, StepFn]:
                steps = build_steps(
                    store,
                    entry,
                    profile,
                    timeouts,
                    prog,
                    run,
                    opts,
                    boot_catalog,
                    boot_url,
                    netboot_dir,
                    facts,
                )
                return admission.guard(entry, profile, steps)

            try:
                return run_host(store, req, prog, make, cancel)
            finally:
                admission.release(host)  # a run stopped between two steps still holds its span

        with stop_on_signals(cancel):
            if not fleet:
                started = time.monotonic()
                summary = run_one(hosts[0], progress, cancel)
                rows = [_row(summary, time.monotonic() - started)]
            else:
                log_dir = opts.log_dir or app.files_dir / "logs" / time.strftime("fleet-%Y%m%dT%H%M%S")
                rows = run_fleet(hosts, run_one, progress, log_dir, opts.parallel, cancel)
    _finish(rows, opts.as_json, fleet)


def _row(s: Summary, elapsed_s: float) -> FleetRow:
    verdict, report = s.facts.get("verdict"), s.facts.get("report")
    return FleetRow(
        s.host, s.outcome, verdict, s.run_id, s.failed_step, s.message, 0.0, "", s.exit_code, report
    )


def _finish(rows: list[FleetRow], as_json: bool, fleet: bool) -> None:
    if as_json:
        JsonProgress(sys.stdout).emit("summary", hosts=[r.to_dict() for r in rows])
    elif fleet:
        sys.stdout.write(summary_table(rows) + "\n")
    else:
        r = rows[0]
        if r.outcome == "ok":
            where = f"; report {r.report}" if r.report else ""
            sys.stdout.write(f"{r.host}: run {r.run_id} finished; verdict {r.verdict or 'none'}{where}\n")
    codes = [r.exit_code for r in rows if r.outcome != "ok"]
    # Exit 0 only for accepted: a run that finished without a verdict proves nothing either.
    rejected = [r.host for r in rows if r.outcome == "ok" and r.verdict != "accepted"]
    if not fleet and rows[0].outcome != "ok":
        r = rows[0]
        raise FlowFailed(
            f"{r.host}: {r.failed_step}: {r.outcome}: {r.message} (run {r.run_id}; rerun to resume)",
            r.exit_code,
        )
    if codes:
        raise FlowFailed(f"{len(codes)} of {len(rows)} host(s) did not finish; see the table", max(codes))
    if rejected:
        raise VerdictFailed(f"not accepted: {', '.join(rejected)}")
