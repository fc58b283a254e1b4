"""Each command lives in a module of its own; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

from provision.commands import stubs
from provision.commands.lab import lab
from provision.commands.lint import lint
from provision.commands.show import show
from provision.commands.status import status


def register(group: click.Group) -> None:
    for command in [lint, show, status, lab, *stubs.COMMANDS]:
        group.add_command(command)
