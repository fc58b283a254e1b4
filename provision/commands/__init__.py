"""Each command lives in a module of its own; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

from provision.commands import lab, stubs


def register(group: click.Group) -> None:
    for command in stubs.COMMANDS:
        group.add_command(command)
    group.add_command(lab.lab)
