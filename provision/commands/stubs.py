"""Commands whose issue has not landed yet: full --help, and a clear exit 2 when run.

Each command moves out of here into its own module when its issue lands.
"""

from __future__ import annotations

import click

from provision.errors import BadInput


def _todo(name: str) -> None:
    raise BadInput(f"'provision {name}' is not available in this version yet")


@click.command()
@click.argument("host", required=False)
@click.option("--all", "all_hosts", is_flag=True, help="Every host in the inventory.")
@click.option("--rack", help="Every host in rack R.")
@click.option("--circle", type=int, help="Every host in circle N.")
@click.option("--yes", is_flag=True, help="Allow destructive steps on an accepted or handed-off host.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON progress and result.")
def host(
    host: str | None, all_hosts: bool, rack: str | None, circle: int | None, yes: bool, as_json: bool
) -> None:
    """Provision HOST end to end: inspect, install, burn in, validate, report, hand off."""
    _todo("host")


@click.command()
@click.argument("host")
@click.option("--yes", is_flag=True, help="Confirm the reinstall of an accepted host.")
def reinstall(host: str, yes: bool) -> None:
    """Re-inspect HOST after a hardware change, show the diff, reinstall and burn in again."""
    _todo("reinstall")


COMMANDS = [
    host,
    reinstall,
]
