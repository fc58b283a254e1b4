"""Commands whose issue has not landed yet: full --help, and a clear exit 2 when run.

Each command moves out of here into its own module when its issue lands.
"""

from __future__ import annotations

import click

from provision.errors import BadInput


def _todo(name: str) -> None:
    raise BadInput(f"'provision {name}' is not available in this version yet")


@click.command()
@click.argument("action", type=click.Choice(["up", "down", "status"]))
def lab(action: str) -> None:
    """Bring the embedded lab of virtual hosts up or down, or show it."""
    _todo("lab")


COMMANDS = [
    lab,
]
