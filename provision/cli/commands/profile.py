"""`provision profile capture HOST`: record a known-good host's measured figures as the golden
reference later hosts of its class are held to (profiles/golden/<profile>.json)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from provision.acceptance.golden import capture as capture_golden
from provision.acceptance.runfiles import RECORD_FILE, RunFiles, golden_path, load_run_dir, write_golden
from provision.acceptance.runs import find_run, load_run, open_store, stored_record
from provision.cli.acceptance import accept_files, power_sums
from provision.cli.app import App, emit
from provision.model.errors import VerdictFailed


@click.group()
def profile() -> None:
    """Hardware profiles: calibrate a class on a known-good host."""


@profile.command()
@click.argument("host")
@click.option("--run", "run_id", help="Capture this run (default: the latest with an acceptance record).")
@click.option(
    "--run-dir", type=click.Path(file_okay=False, path_type=Path), help="Capture the run in DIR instead."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def capture(app: App, host: str, run_id: str | None, run_dir: Path | None, as_json: bool) -> None:
    """Record HOST's measured figures (an accepted run) as its profile's golden reference.

    Stored beside the profiles (golden/<profile>.json), not in the state directory: it is policy
    for the whole class, to review and version with the profile it calibrates."""
    h = app.catalog.host(host)
    prof = app.catalog.profile_of(h)
    files: RunFiles
    if run_dir is not None:
        files = load_run_dir(run_dir, power_sums(app))
        verdict = accept_files(app, files, "burnin", None).verdict.value
    else:
        with open_store(app.state_dir) as store:
            run = find_run(store, host, run_id, needs=RECORD_FILE)
            record = stored_record(store, run.id)
            verdict = record["verdict"] if record else "unknown"
            files = load_run(store, run, power_sums(app))
    if files.run.host != host:
        raise VerdictFailed(f"run {files.run.run_id} is of {files.run.host}, not {host}")
    if verdict != "accepted":
        raise VerdictFailed(
            f"{host}: run {files.run.run_id} is {verdict}: only an accepted run is a reference"
        )
    replaced = golden_path(app.profiles_dir, prof.name).is_file()
    golden = capture_golden(prof.name, host, files.run.run_id, time.time(), files.run.suites)
    path = write_golden(app.profiles_dir, golden)
    count = sum(len(m) for m in golden.measurements.values())
    out = {
        "profile": prof.name,
        "host": host,
        "run_id": golden.run_id,
        "path": str(path),
        "figures": count,
        "replaced": replaced,
    }
    emit(out, as_json, lambda o: f"{o['path']}: {o['figures']} figures of {o['host']} run {o['run_id']}")
