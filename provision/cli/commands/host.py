"""`provision host HOST | --all | --rack R | --circle N`: the whole flow, resumable, one host or many."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from provision.cli.app import App
from provision.cli.launch import LaunchOptions, flow_options, launch
from provision.cli.takeover import takeover_names
from provision.flow.fleet import select_hosts
from provision.flow.steps import build_steps
from provision.model.errors import BadInput


@click.command()
@click.argument("host", required=False)
@click.option("--all", "all_hosts", is_flag=True, help="Every host in the inventory.")
@click.option("--rack", help="Every host in rack R.")
@click.option("--circle", type=int, help="Every host in circle N.")
@click.option("--yes", is_flag=True, help="Allow destructive steps on an accepted or handed-off host.")
@click.option(
    "--take-over",
    is_flag=True,
    help="Only resume unfinished runs whose host no live controller holds (a dead one's); start none.",
)
@flow_options("provision")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="Upper bound on hosts in flight (fleets) [default: all; each step waits for what it needs].",
)
@click.option("--bmc-requests", type=click.IntRange(min=1), help="Steps at once per BMC [site limits].")
@click.option("--installs", type=click.IntRange(min=1), help="Installs at once (boot server) [site limits].")
@click.option(
    "--agent-pushes", type=click.IntRange(min=1), help="Burn-in agents shipped at once [site limits]."
)
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Per-host logs of a fleet [default: STATE/logs/fleet-<time>].",
)
@click.pass_obj
def host(
    app: App,
    host: str | None,
    all_hosts: bool,
    rack: str | None,
    circle: int | None,
    yes: bool,
    take_over: bool,
    parallel: int | None,
    bmc_requests: int | None,
    installs: int | None,
    agent_pushes: int | None,
    log_dir: Path | None,
    opts: LaunchOptions,
) -> None:
    """Provision HOST end to end: inspect, install, burn in, validate, report, hand off.

    Every step is journaled; run the same command again after a failure, a Ctrl-C or a controller
    reboot and it continues from the first unfinished step, never repeating an install or a
    destructive disk test that completed. Exit: 0 accepted, 1 not accepted, 2 bad input, 3 a BMC,
    SSH or network failure, 130 interrupted.
    """
    fleet = bool(all_hosts or rack or circle is not None)
    if fleet and host:
        raise BadInput(f"host: expected a HOST or one of --all/--rack/--circle, got both ({host!r})")
    if not fleet and not host:
        raise BadInput("host: expected a HOST, or --all, --rack R or --circle N, got none")
    names = [h.name for h in select_hosts(app.catalog, all_hosts, rack, circle)] if fleet else [str(host)]
    flags = {"bmc_requests": bmc_requests, "installs": installs, "agent_pushes": agent_pushes}
    limits = {k: v for k, v in flags.items() if v is not None}
    opts = dataclasses.replace(opts, yes=yes, parallel=parallel, log_dir=log_dir, limits=limits)
    if take_over:
        names = takeover_names(app, names, opts.as_json)
        if not names:
            return
        opts = dataclasses.replace(opts, resume_only=True)
    launch(app, names, opts, build_steps, fleet)
