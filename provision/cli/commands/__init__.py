"""Each command lives in a module of its own; `register` adds them all to the CLI group."""

from __future__ import annotations

import click

from provision.cli.commands.bios import bios
from provision.cli.commands.boot import boot
from provision.cli.commands.burnin import burnin
from provision.cli.commands.controller import controller
from provision.cli.commands.firmware import firmware
from provision.cli.commands.handoff import handoff
from provision.cli.commands.host import host
from provision.cli.commands.inspect import inspect
from provision.cli.commands.kickstart import kickstart
from provision.cli.commands.lab import lab
from provision.cli.commands.lint import lint
from provision.cli.commands.pdu import pdu
from provision.cli.commands.power import power
from provision.cli.commands.profile import profile
from provision.cli.commands.reinstall import reinstall
from provision.cli.commands.report import report
from provision.cli.commands.serve import serve
from provision.cli.commands.show import show
from provision.cli.commands.status import status
from provision.cli.commands.store import store


def register(group: click.Group) -> None:
    commands = [lint, show, status, inspect, power, boot, kickstart, serve, burnin, report, handoff, profile]
    for command in [*commands, firmware, bios, host, reinstall, lab, store, pdu, controller]:
        group.add_command(command)
