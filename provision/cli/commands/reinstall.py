"""`provision reinstall HOST`: after a hardware change, inspect again, show what changed against the
last accepted inventory, reinstall and burn in again; the host is out of its pool meanwhile."""

from __future__ import annotations

import dataclasses

import click

from provision.cli.app import App
from provision.cli.launch import LaunchOptions, flow_options, launch
from provision.flow.steps import build_steps


@click.command()
@click.argument("host")
@click.option("--yes", is_flag=True, help="Confirm the reinstall of an accepted host.")
@flow_options("reinstall")
@click.pass_obj
def reinstall(
    app: App,
    host: str,
    yes: bool,
    opts: LaunchOptions,
) -> None:
    """Re-inspect HOST after a hardware change, show the diff, reinstall and burn in again.

    The diff (serials, DIMMs, GPUs, drives, NIC MACs, firmware) is taken against the inventory of
    HOST's last accepted run; replaced boot SSDs are re-targeted in the kickstart by their new ids,
    the burn-in weighs the changed parts more, and the new report names the previous one. The host
    is tainted (maintenance) from the start until it is accepted again.
    """
    launch(app, [host], dataclasses.replace(opts, yes=yes), build_steps, fleet=False)
