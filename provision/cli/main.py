"""The `provision` console script. The only place (with the agent's entry point) that catches
ProvisionError: it prints one line and maps it to the exit code.

Exit codes: 0 success/accepted, 1 a verdict failed, 2 bad input or usage, 3 an external system failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provision.cli.app import App, default_state_dir
from provision.cli.commands import register
from provision.model.catalog import default_profiles_dir
from provision.model.errors import ProvisionError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--profiles",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="PROVISION_PROFILES",
    help="Directory of hardware profiles and hosts.yaml [env PROVISION_PROFILES; default: the repository's].",
)
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="PROVISION_STATE",
    help="State directory (SQLite store, runs, reports) [env PROVISION_STATE; default: XDG state dir].",
)
@click.option("--verbose", "-v", is_flag=True, help="Log each step and external call.")
@click.version_option(package_name="inferno-provision")
@click.pass_context
def cli(ctx: click.Context, profiles: Path | None, state: Path | None, verbose: bool) -> None:
    """Provision, burn in, accept and hand off Inferno bare-metal hosts."""
    ctx.obj = App(
        profiles_dir=profiles or default_profiles_dir(),
        state_dir=state or default_state_dir(),
        verbose=verbose,
    )


register(cli)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="provision", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("provision: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ProvisionError as exc:
        click.echo(f"provision: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("provision: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
