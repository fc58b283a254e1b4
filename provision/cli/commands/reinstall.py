"""`provision reinstall HOST`: after a hardware change, inspect again, show what changed against the
last accepted inventory, reinstall and burn in again; the host is out of its pool meanwhile."""

from __future__ import annotations

import click

from provision.cli.app import App
from provision.cli.commands.host import flow_options
from provision.cli.launch import LaunchOptions, launch
from provision.flow.steps import build_steps


@click.command()
@click.argument("host")
@click.option("--yes", is_flag=True, help="Confirm the reinstall of an accepted host.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON progress and result.")
@flow_options
@click.pass_obj
def reinstall(
    app: App,
    host: str,
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
) -> None:
    """Re-inspect HOST after a hardware change, show the diff, reinstall and burn in again.

    The diff (serials, DIMMs, GPUs, drives, NIC MACs, firmware) is taken against the inventory of
    HOST's last accepted run; replaced boot SSDs are re-targeted in the kickstart by their new ids,
    the burn-in weighs the changed parts more, and the new report names the previous one. The host
    is tainted (maintenance) from the start until it is accepted again.
    """
    opts = LaunchOptions(
        kind="reinstall",
        yes=yes,
        restart_from=restart_from,
        timeouts=timeouts,
        plan=plan,
        as_json=as_json,
        listen=listen,
        serve=not no_serve,
        extras={"kubeconfig": kubeconfig, "ssh_key": identity, "agent_dir": agent_dir},
    )
    launch(app, [host], opts, build_steps, fleet=False)
