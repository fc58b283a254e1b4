"""`provision report`: the acceptance record of a run as HTML (to sign), JSON (schema'd) or JUnit XML,
or what changed between two runs (`--diff A B`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from provision.acceptance.evaluation import Acceptance
from provision.acceptance.report.diff import diff_records, render_diff
from provision.acceptance.report.html import render_html
from provision.acceptance.report.junit import render_junit
from provision.acceptance.runfiles import RunFiles, load_run_dir
from provision.acceptance.runs import find_run, keep_acceptance, load_run, open_store, stored_record
from provision.acceptance.validation import RunVerdict
from provision.cli.acceptance import LOCAL_HOST, accept_files, power_sums
from provision.cli.app import App
from provision.model.errors import BadInput, VerdictFailed


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
@click.option(
    "--format", "fmt", type=click.Choice(["html", "json", "junit"]), default="html", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--local", is_flag=True, help="Report the last 'burnin --local' run.")
@click.option(
    "--diff", nargs=2, help="Show what changed between RUN_A and RUN_B (run ids or run directories)."
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Report the run in DIR (the agent's result.json and telemetry).",
)
@click.option("--profile", "profile_name", help="Hold the run to this profile (default: its host's).")
@click.option(
    "--record",
    is_flag=True,
    help="With HOST --run ID: keep the re-judged record and state (default: read-only).",
)
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
    record: bool,
) -> None:
    """Write HOST's burn-in report (HTML, JSON, JUnit), or a diff of two runs.

    The run comes from the state store (HOST, its latest burn-in, whose record and the host's
    accepted/rejected state are kept there; or --run ID, re-judged read-only unless --record, and
    never moving the host past a newer run), from --local (the last 'burnin --local' run) or from
    --run-dir DIR (a run directory copied by hand). Exit 0 only when the run is accepted; 1 when it
    is rejected or inconclusive."""
    if sum((local, run_dir is not None, host is not None)) > 1:
        raise BadInput("HOST, --local and --run-dir: expected one of them, got several")
    if host is not None:
        app.catalog.host(host)
    if diff:
        records = [_record_of(app, host, ref, profile_name) for ref in diff]
        d = diff_records(records[0], records[1])
        _write(json.dumps(d, indent=2) if fmt == "json" else render_diff(d), output)
        return
    if local:
        with open_store(app.state_dir) as store:
            run = find_run(store, LOCAL_HOST, run_id)
            files = load_run(store, run, power_sums(app))
        acc = accept_files(app, files, "local", profile_name)
        _write(render(acc, files, fmt), output)
        _exit_for(acc, f"run {run.id}")
        return
    if run_dir is not None:
        directory = run_dir
        files = load_run_dir(directory, power_sums(app))
        if host is not None and files.run.host != host:
            raise BadInput(f"{directory}: host: expected {host!r}, got {files.run.host!r}")
        acc = accept_files(app, files, "burnin", profile_name)
        _write(render(acc, files, fmt), output)
        _exit_for(acc, str(directory))
        return
    if host is None:
        raise BadInput("report: expected HOST, --local or --run-dir DIR, got none of them")
    keep = run_id is None or record  # re-judging a named run is read-only unless --record
    with open_store(app.state_dir, writable=keep) as store:
        run = find_run(store, host, run_id)
        files = load_run(store, run, power_sums(app))
        acc = accept_files(app, files, run.kind, profile_name)
        kept = keep_acceptance(store, host, run.id, acc) if keep else None
    _write(render(acc, files, fmt), output)
    if kept:
        click.echo(f"{host}: state left as it was: {kept}", err=True)
    _exit_for(acc, f"run {run.id}")


def _exit_for(acc: Acceptance, what: str) -> None:
    """Exit 0 only for an accepted run: rejected and inconclusive are exit 1 (the report is written)."""
    if acc.verdict is not RunVerdict.accepted:
        raise VerdictFailed(f"{what}: verdict {acc.verdict.value}")


def _record_of(app: App, host: str | None, ref: str, profile_name: str | None) -> dict[str, Any]:
    """A run directory, or a run id of HOST in the state store (its kept record when it has one)."""
    path = Path(ref)
    if path.is_dir():
        return accept_files(app, load_run_dir(path, power_sums(app)), "burnin", profile_name).record
    if host is None:
        raise BadInput(f"--diff {ref}: expected a run directory, or HOST and a run id, got neither")
    with open_store(app.state_dir) as store:
        run = find_run(store, host, ref)
        kept = stored_record(store, run.id)
        if kept is not None:
            return kept
        return accept_files(app, load_run(store, run, power_sums(app)), run.kind, profile_name).record
