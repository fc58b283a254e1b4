"""Each command lives in a module of its own; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

from provision.commands.boot import boot
from provision.commands.burnin import burnin
from provision.commands.handoff import handoff
from provision.commands.host import host
from provision.commands.inspect import inspect
from provision.commands.kickstart import kickstart
from provision.commands.lab import lab
from provision.commands.lint import lint
from provision.commands.power import power
from provision.commands.profile import profile
from provision.commands.reinstall import reinstall
from provision.commands.report import report
from provision.commands.serve import serve
from provision.commands.show import show
from provision.commands.status import status


def register(group: click.Group) -> None:
    commands = [lint, show, status, inspect, power, boot, kickstart, serve, burnin, report, handoff, profile]
    for command in [*commands, host, reinstall, lab]:
        group.add_command(command)
