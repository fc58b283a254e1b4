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
@click.argument("host", required=False)
@click.option("--local", is_flag=True, help="Burn in this machine.")
@click.option("--plan", default="quick", show_default=True, help="quick, acceptance, or a plan FILE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def burnin(host: str | None, local: bool, plan: str, as_json: bool) -> None:
    """Run the burn-in agent on HOST over SSH, or on this machine with --local."""
    _todo("burnin")


@click.command()
@click.argument("host", required=False)
@click.option("--run", "run_id", help="Run ID (default: the latest).")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "junit"]), default="html")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--local", is_flag=True, help="Report the last 'burnin --local' run.")
@click.option("--diff", nargs=2, help="Show what changed between RUN_A and RUN_B.")
def report(
    host: str | None,
    run_id: str | None,
    fmt: str,
    output: str | None,
    local: bool,
    diff: tuple[str, str] | None,
) -> None:
    """Write HOST's burn-in report (HTML, JSON, JUnit), or a diff of two runs."""
    _todo("report")


@click.command()
@click.argument("host")
@click.option("--yes", is_flag=True, help="Confirm the reinstall of an accepted host.")
def reinstall(host: str, yes: bool) -> None:
    """Re-inspect HOST after a hardware change, show the diff, reinstall and burn in again."""
    _todo("reinstall")


@click.command()
@click.argument("host")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Apply to this cluster.")
@click.option("--dry-run", is_flag=True, help="Print the manifests only.")
def handoff(host: str, kubeconfig: str | None, dry_run: bool) -> None:
    """Hand an accepted HOST to OpenShift: labels, taints, reservations, namespace."""
    _todo("handoff")


COMMANDS = [
    host,
    burnin,
    report,
    reinstall,
    handoff,
]
