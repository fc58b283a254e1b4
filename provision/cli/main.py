"""The `provision` console script. The only place (with the agent's entry point) that catches
ProvisionError: it prints one line and maps it to the exit code. Any other exception is a bug: one
line and exit 3, its traceback in a log file (provision.cli.crash).

Exit codes: 0 success/accepted, 1 a verdict failed, 2 bad input or usage, 3 an external system
failed or the state store cannot be used (or a bug), 141 the reader of our output went away
(`provision show HOST --json | head`: silent, as a shell tool killed by SIGPIPE; SIGPIPE itself
stays ignored, so the boot server and the controller never die of a client that hung up).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from provision.cli import crash
from provision.cli.app import App, default_state_dir
from provision.cli.commands import register
from provision.model.catalog import default_profiles_dir
from provision.model.errors import ProvisionError, StateError

PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a tool that wrote into a closed pipe


def _stdout_gone() -> None:
    """Point stdout at /dev/null so that nothing left in its buffer fails again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _Cli(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # click would swallow it and exit 1, the code of a failed verdict
            _stdout_gone()
            raise click.exceptions.Exit(PIPE_CLOSED) from None


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--profiles",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="PROVISION_PROFILES",
    help="Directory of hardware profiles and hosts.yaml [env PROVISION_PROFILES; default: the repository's].",
)
@click.option(
    "--state",
    # Not file_okay=False: click's usage error would exit 2, and an unusable state store is exit 3.
    type=click.Path(path_type=Path),
    envvar="PROVISION_STATE",
    help="State directory (SQLite store, runs, reports) [env PROVISION_STATE; default: XDG state dir].",
)
@click.option("--verbose", "-v", is_flag=True, help="Log each step and external call.")
@click.version_option(package_name="inferno-provision")
@click.pass_context
def cli(ctx: click.Context, profiles: Path | None, state: Path | None, verbose: bool) -> None:
    """Provision, burn in, accept and hand off Inferno bare-metal hosts."""
    # main() hands in its App, so that a crash can put its log in the state directory.
    app = ctx.ensure_object(App)
    app.profiles_dir = profiles or default_profiles_dir()
    app.state_dir = state or default_state_dir()
    app.verbose = verbose
    if app.state_dir.exists() and not app.state_dir.is_dir():
        source = ctx.get_parameter_source("state")
        named = {ParameterSource.COMMANDLINE: "--state", ParameterSource.ENVIRONMENT: "PROVISION_STATE"}
        where = named.get(source, "state directory") if source else "state directory"
        raise StateError(f"{where} {app.state_dir}: expected a directory, got a file")


register(cli)


def main(argv: list[str] | None = None) -> None:
    app = App()
    try:
        code = cli.main(args=argv, prog_name="provision", standalone_mode=False, obj=app)
        if code == PIPE_CLOSED:
            sys.exit(PIPE_CLOSED)
        sys.stdout.flush()  # here, not at interpreter exit, so that a closed pipe is seen
    except BrokenPipeError:
        _stdout_gone()
        sys.exit(PIPE_CLOSED)
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
    except Exception as exc:  # a bug: one line and a log file, never a traceback on the terminal
        crash.report(exc, app.state_dir)
        sys.exit(3)
    sys.exit(0)
