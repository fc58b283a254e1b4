"""`provision report`: the acceptance record of a run as HTML (to sign), JSON (schema'd) or JUnit XML,
or what changed between two runs (`--diff A B`)."""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import click

from provision.acceptance import Acceptance, evaluate
from provision.app import App
from provision.errors import BadInput
from provision.report.diff import diff_records, render_diff
from provision.report.html import render_html
from provision.report.junit import render_junit
from provision.runfiles import RunFiles, latest_local_run, load_run_dir, read_golden


def tool_version() -> str:
    return version("inferno-provision")


def accept_files(app: App, files: RunFiles, kind: str, profile_name: str | None) -> Acceptance:
    """Hold a run to its profile: the host's (from hosts.yaml) or the one named with --profile."""
    catalog = app.catalog
    host = catalog.hosts.get(files.run.host)
    if profile_name is not None:
        if profile_name not in catalog.profiles:
            known = ", ".join(sorted(catalog.profiles))
            raise BadInput(f"--profile: expected one of {known}, got {profile_name!r}")
        profile = catalog.profiles[profile_name]
    else:
        profile = catalog.profile_of(host) if host else None
    golden = read_golden(app.profiles_dir, profile.name) if profile else None
    return evaluate(
        files,
        host_name=files.run.host,
        profile=profile,
        host=host,
        golden=golden,
        kind=kind,
        generated_at=time.time(),
        tool_version=tool_version(),
    )


def _run_dir(app: App, local: bool, run_dir: Path | None, host: str | None) -> tuple[Path, str]:
    if local and run_dir is not None:
        raise BadInput("--local and --run-dir: expected one of them, got both")
    if local:
        return latest_local_run(app.state_dir), "local"
    if run_dir is not None:
        return run_dir, "burnin"
    raise BadInput(
        f"report {host or ''}: expected --local or --run-dir DIR "
        "(reports from the state store arrive with it), got neither".replace("  ", " ")
    )


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    path = Path(output)
    try:
        path.write_text(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise BadInput(f"-o {output}: expected a writable file, got {exc.strerror}") from None
    click.echo(f"wrote {path}", err=True)


def render(acc: Acceptance, files: RunFiles, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(acc.record, indent=2, default=str)
    if fmt == "junit":
        return render_junit(acc.record)
    return render_html(acc.record, files.telemetry)


@click.command()
@click.argument("host", required=False)
@click.option("--run", "run_id", help="Run ID (default: the latest).")
@click.option("--format", "fmt", type=click.Choice(["html", "json", "junit"]), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--local", is_flag=True, help="Report the last 'burnin --local' run.")
@click.option("--diff", nargs=2, help="Show what changed between RUN_A and RUN_B (run directories).")
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Report the run in DIR (the agent's result.json and telemetry).",
)
@click.option("--profile", "profile_name", help="Hold the run to this profile (default: its host's).")
@click.pass_obj
def report(
    app: App,
    host: str | None,
    run_id: str | None,
    fmt: str,
    output: str | None,
    local: bool,
    diff: tuple[str, str] | None,
    run_dir: Path | None,
    profile_name: str | None,
) -> None:
    """Write HOST's burn-in report (HTML, JSON, JUnit), or a diff of two runs."""
    if host is not None:
        app.catalog.host(host)
    if diff:
        records = []
        for ref in diff:
            files = load_run_dir(Path(ref))
            records.append(accept_files(app, files, "burnin", profile_name).record)
        d = diff_records(records[0], records[1])
        _write(json.dumps(d, indent=2) if fmt == "json" else render_diff(d), output)
        return
    directory, kind = _run_dir(app, local, run_dir, host)
    files = load_run_dir(directory)
    if host is not None and files.run.host != host:
        raise BadInput(f"{directory}: host: expected {host!r}, got {files.run.host!r}")
    acc = accept_files(app, files, kind, profile_name)
    _write(render(acc, files, fmt), output)
