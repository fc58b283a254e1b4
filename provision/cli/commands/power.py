"""`provision power HOST on|off|cycle|status`: BMC power control, waiting for the state."""

from __future__ import annotations

from typing import Any

import click

from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import connect
from provision.cli.app import App, emit


def _human(data: dict[str, Any]) -> str:
    if data["action"] == "status":
        return f"{data['host']}: power {data['state']}"
    if not data["changed"]:
        return f"{data['host']}: power already {data['state']} (nothing to do)"
    steps = " -> ".join(data["steps"])
    return f"{data['host']}: power {data['state']} after {steps} in {data['elapsed_s']:.1f} s"


@click.command()
@click.argument("host")
@click.argument("action", type=click.Choice(["on", "off", "cycle", "status"]))
@click.option("--force", is_flag=True, help="Force off instead of a graceful shutdown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def power(app: App, host: str, action: str, force: bool, as_json: bool) -> None:
    """Power HOST on, off, cycle it, or show its power state.

    Asking for the state HOST is already in succeeds without an action. Changes wait for the
    state (bmc.power_timeout_s in hosts.yaml). `cycle` is a confirmed force off, then on.
    """
    entry = app.catalog.host(host)
    act = PowerAction(action)
    if act is PowerAction.off and force:
        act = PowerAction.force_off
    with connect(entry.bmc) as bmc:
        result = set_power(bmc, act, entry.bmc.power_timeout_s)
    emit(
        {"host": host, "bmc": entry.bmc.url, **result.to_dict(), "bmc_retries": bmc.retries}, as_json, _human
    )
