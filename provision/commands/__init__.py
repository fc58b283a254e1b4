"""Each command lives in a module of its own; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

from provision.commands import boot, host, inspect, power, reinstall, stubs
from provision.commands.burnin import burnin
from provision.commands.handoff import handoff
from provision.commands.kickstart import kickstart
from provision.commands.lint import lint
from provision.commands.profile import profile
from provision.commands.report import report
from provision.commands.serve import serve
from provision.commands.show import show
from provision.commands.status import status


def register(group: click.Group) -> None:
    for command in [lint, show, status, kickstart, serve, report, handoff, profile, *stubs.COMMANDS]:
        group.add_command(command)
    group.add_command(inspect.inspect)
    group.add_command(power.power)
    group.add_command(boot.boot)
    group.add_command(burnin)
    group.add_command(host.host)
    group.add_command(reinstall.reinstall)
