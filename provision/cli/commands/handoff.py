"""`provision handoff HOST`: hand an accepted host to OpenShift. Prints (--dry-run), writes, or with
--kubeconfig applies the manifests, then checks the node is Ready with its GPUs advertised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provision.acceptance.runfiles import RECORD_FILE, load_run_dir
from provision.acceptance.runs import find_run, open_store, stored_record
from provision.cli.acceptance import accept_files, power_sums
from provision.cli.app import App, emit
from provision.handoff.manifests import QUARANTINE_TAINT, driver_mode, manifests, render_manifests, taints
from provision.handoff.metrics import textfile_metrics
from provision.handoff.zfs import zfs_plan
from provision.model.errors import VerdictFailed
from provision.model.hosts import Host
from provision.model.profile import Profile
from provision.store.state import HostState

TEXTFILE = "inferno_acceptance.prom"


def plan(profile: Profile, host: Host, record: dict[str, Any], state: str) -> dict[str, Any]:
    """Everything the handoff does, as data: what --dry-run prints and the other modes act on."""
    zfs = zfs_plan(profile, host, record)
    return {
        "host": host.name,
        "run_id": record["run"]["run_id"],
        "verdict": record["verdict"],
        "accepted": record["verdict"] == "accepted" and state in ("accepted", "handed-off"),
        "manifests": manifests(profile, host, record),
        "taints": [
            f"{t.key}={t.value}:{t.effect.value}" for t in taints(profile, record["verdict"] == "accepted")
        ],
        "gpu_driver": driver_mode(profile, record),
        "zfs": {"pool": zfs.pool, "devices": zfs.devices, "commands": zfs.commands, "refusals": zfs.refusals},
        "textfile": textfile_metrics(host.name, state, record),
    }


def _human(p: dict[str, Any]) -> str:
    zfs = p["zfs"]
    lines = [
        render_manifests(p["manifests"]).rstrip(),
        "---",
        f"# GPU driver: {p['gpu_driver']['statement']}",
    ]
    lines += [f"#   {c}" for c in p["gpu_driver"]["commands"]]
    if zfs["pool"] is None:
        lines.append("# ZFS: no pool in this profile")
    else:
        lines.append(f"# ZFS pool {zfs['pool']} on the host, as root:")
        lines += [f"#   {c}" for c in zfs["commands"]] or [f"#   refused: {r}" for r in zfs["refusals"]]
    lines.append(f"# node-exporter textfile {TEXTFILE}:")
    lines += [f"#   {line}" for line in p["textfile"].splitlines()]
    return "\n".join(lines)


def _record(app: App, host: Host, run_id: str | None, run_dir: Path | None) -> tuple[dict[str, Any], str]:
    if run_dir is not None:
        acc = accept_files(app, load_run_dir(run_dir, power_sums(app)), "burnin", None)
        return acc.record, acc.verdict.value
    with open_store(app.state_dir) as store:
        run = find_run(store, host.name, run_id, needs=RECORD_FILE)
        record = stored_record(store, run.id)
        state = store.get_host_state(host.name)
    if record is None:
        raise VerdictFailed(f"{host.name}: run {run.id} has no acceptance record")
    return record, str(state) if state else "unknown"


@click.command()
@click.argument("host")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), help="Apply to this cluster.")
@click.option("--dry-run", is_flag=True, help="Print the manifests only.")
@click.option("--run", "run_id", help="Hand off on this run's record (default: the latest).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Judge the run in DIR instead of the state store's record (labs without a store).",
)
@click.option(
    "--wait", "wait_s", type=float, default=600.0, show_default=True, help="Seconds to wait for Ready."
)
@click.option(
    "-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Write the files here."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def handoff(
    app: App,
    host: str,
    kubeconfig: Path | None,
    dry_run: bool,
    run_id: str | None,
    run_dir: Path | None,
    wait_s: float,
    output_dir: Path | None,
    as_json: bool,
) -> None:
    """Hand an accepted HOST to OpenShift: labels, taints, reservations, namespace."""
    h = app.catalog.host(host)
    profile = app.catalog.profile_of(h)
    record, state = _record(app, h, run_id, run_dir)
    p = plan(profile, h, record, state)
    if not p["accepted"]:
        if kubeconfig is not None and not dry_run:
            from provision.handoff import kube

            kube.quarantine(kube.connect(kubeconfig), h.name)
        q = QUARANTINE_TAINT
        raise VerdictFailed(
            f"{host}: not handed off: run {p['run_id']} is {p['verdict']} (host state {state}); "
            f"the node keeps {q.key}={q.value}:{q.effect.value}"
        )
    if p["zfs"]["refusals"]:
        raise VerdictFailed(
            f"{host}: ZFS pool {p['zfs']['pool']} refused: " + "; ".join(p["zfs"]["refusals"])
        )
    if dry_run:
        emit(p, as_json, _human)
        return
    out = output_dir or app.files_dir / "handoff" / host
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifests.yaml").write_text(render_manifests(p["manifests"]))
    (out / "zfs-create.sh").write_text("#!/bin/sh\nset -eu\n" + "\n".join(p["zfs"]["commands"]) + "\n")
    (out / TEXTFILE).write_text(p["textfile"])
    result: dict[str, Any] = {"host": host, "files": str(out), "gpu_driver": p["gpu_driver"]["statement"]}
    if kubeconfig is not None:
        from provision.handoff import kube

        api = kube.connect(kubeconfig)
        ours = {t.key for t in profile.platform.taints} | {QUARANTINE_TAINT.key}
        result["applied"] = kube.apply(api, p["manifests"], ours)
        resource = profile.gpus.resource_name if profile.gpus else None
        ready, capacity = kube.wait_ready(api, h.name, resource, profile.gpu_count, wait_s)
        result.update(ready=ready, gpu_capacity=capacity)
        if not ready or (resource is not None and capacity != str(profile.gpu_count)):
            raise VerdictFailed(
                f"{host}: applied, but the node is {'Ready' if ready else 'not Ready'} with "
                f"{resource}={capacity}, expected Ready with {resource}={profile.gpu_count}"
            )
        if run_dir is None:
            with open_store(app.state_dir, writable=True) as store:
                store.set_host_state(host, HostState.handed_off, f"run {p['run_id']} handed off")
        result["state"] = "handed-off"
    emit(result, as_json, lambda r: json.dumps(r, indent=2))
