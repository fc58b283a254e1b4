"""`provision host HOST | --all | --rack R | --circle N`: the whole flow, resumable, one host or many."""

from __future__ import annotations

from pathlib import Path

import click

from provision.cli.app import App
from provision.cli.launch import LaunchOptions, launch
from provision.flow.engine import STEP_NAMES
from provision.flow.fleet import select_hosts
from provision.flow.steps import build_steps
from provision.model.errors import BadInput


def flow_options(f: click.decorators.FC) -> click.decorators.FC:
    """The options `host` and `reinstall` share."""
    for option in reversed(
        [
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
        ]
    ):
        f = option(f)
    return f


@click.command()
@click.argument("host", required=False)
@click.option("--all", "all_hosts", is_flag=True, help="Every host in the inventory.")
@click.option("--rack", help="Every host in rack R.")
@click.option("--circle", type=int, help="Every host in circle N.")
@click.option("--yes", is_flag=True, help="Allow destructive steps on an accepted or handed-off host.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON progress and result.")
@flow_options
@click.option("--parallel", type=int, default=4, show_default=True, help="Hosts at once (fleets).")
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
    as_json: bool,
    restart_from: str | None,
    timeouts: tuple[str, ...],
    plan: str,
    kubeconfig: str | None,
    identity: str | None,
    agent_dir: str,
    listen: str | None,
    no_serve: bool,
    parallel: int,
    log_dir: Path | None,
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
    opts = LaunchOptions(
        kind="provision",
        yes=yes,
        restart_from=restart_from,
        timeouts=timeouts,
        plan=plan,
        parallel=parallel,
        log_dir=log_dir,
        as_json=as_json,
        listen=listen,
        serve=not no_serve,
        extras={"kubeconfig": kubeconfig, "ssh_key": identity, "agent_dir": agent_dir},
    )
    launch(app, names, opts, build_steps, fleet)
