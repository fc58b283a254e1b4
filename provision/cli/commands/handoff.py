"""`provision handoff HOST`: hand an accepted host to OpenShift. Prints (--dry-run), writes, or with
--kubeconfig joins the host by the profile's `handoff.join` (an RHCOS reinstall with its Ignition
config and CSR approval, a metal3 BareMetalHost, or none) and applies the manifests, then checks the
node is Ready with its GPUs advertised. The join runs as the journaled steps of a handoff run
(provision.flow.handoff_steps), resumed where it stopped."""

from __future__ import annotations

import dataclasses
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from provision.acceptance.runfiles import RECORD_FILE, load_run_dir
from provision.acceptance.runs import find_run, open_store, stored_record
from provision.cli.acceptance import accept_files, power_sums
from provision.cli.app import App, emit
from provision.handoff.manifests import QUARANTINE_TAINT, driver_mode, manifests, render_manifests, taints
from provision.handoff.metrics import textfile_metrics
from provision.handoff.zfs import zfs_plan
from provision.install.rhcos import rhcos_plan
from provision.install.spec import NO_RUN_TOKEN
from provision.model.catalog import Catalog
from provision.model.errors import VerdictFailed
from provision.model.handoff import JoinMode
from provision.model.hosts import DiskId, Host
from provision.model.profile import Profile

TEXTFILE = "inferno_acceptance.prom"


def join_plan(catalog: Catalog, profile: Profile, host: Host) -> dict[str, Any]:
    """How the host joins, as data: the RHCOS iPXE script and Ignition config (placeholder token, the
    boot server's URL) or the metal3 objects (credentials as placeholders); none: nothing."""
    mode = profile.handoff.join
    out: dict[str, Any] = {"mode": mode.value}
    if mode is JoinMode.rhcos:
        rp = rhcos_plan(catalog, host, NO_RUN_TOKEN, catalog.site.boot_server_url)
        out.update(pool=rp.pool, install_dev=rp.install_dev, ipxe=rp.ipxe, ignition=rp.ignition)
    elif mode is JoinMode.metal3:
        from provision.handoff.metal3 import metal3_objects

        out["objects"] = metal3_objects(profile, host, None)
    return out


def plan(
    profile: Profile, host: Host, record: dict[str, Any], state: str, catalog: Catalog | None = None
) -> dict[str, Any]:
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
        "join": join_plan(catalog, profile, host)
        if catalog is not None
        else {"mode": profile.handoff.join.value},
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
    join = p["join"]
    lines.append(f"# join: {join['mode']}")
    if "ipxe" in join:
        lines.append(
            f"# RHCOS iPXE script (on {join['install_dev']}; a run's token replaces {NO_RUN_TOKEN}):"
        )
        lines += [f"#   {line}" for line in join["ipxe"].splitlines()]
        lines.append(f"# Ignition config (merges pool {join['pool']}):")
        lines += [
            f"#   {line}" for line in json.dumps(join["ignition"], indent=2, sort_keys=True).splitlines()
        ]
    if "objects" in join:
        lines.append(render_manifests(join["objects"]).rstrip())
    return "\n".join(lines)


def _pinned(store: Any, host: Host, run_id: str) -> Host:
    """The host with the boot disks its install used (render_kickstart's fact), when hosts.yaml names none."""
    if host.boot_disks:
        return host
    for row in store.steps(run_id):
        pins = (
            ((row.evidence or {}).get("facts") or {}).get("boot_disks")
            if row.step == "render_kickstart"
            else None
        )
        if pins:
            return host.model_copy(update={"boot_disks": tuple(DiskId(**d) for d in pins)})
    return host


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
    if run_dir is None:
        with open_store(app.state_dir) as store:
            h = _pinned(store, h, record["run"]["run_id"])
    catalog = dataclasses.replace(app.catalog, hosts={**app.catalog.hosts, h.name: h})
    p = plan(profile, h, record, state, catalog if dry_run else None)
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
    if kubeconfig is not None and run_dir is not None:
        # A lab without a store: no journal to resume from, so no join; labels on an existing node.
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
        result["state"] = "handed-off"
    elif kubeconfig is not None:
        result.update(_join_and_label(app, catalog, h, p, kubeconfig, wait_s))
    emit(result, as_json, lambda r: json.dumps(r, indent=2))


def _join_and_label(
    app: App, catalog: Catalog, h: Host, p: dict[str, Any], kubeconfig: Path, wait_s: float
) -> dict[str, Any]:
    """The handoff steps under the host's lock, with the boot server running when RHCOS is to be
    installed (the Node is not Ready yet); progress goes to stderr, the result to stdout."""
    from provision.flow.engine import Cancel
    from provision.flow.handoff_steps import connect, raise_for, run_handoff
    from provision.flow.hostenv import HostEnv
    from provision.flow.logprogress import PlainProgress
    from provision.handoff.join import node_state
    from provision.install.bootserver import BootServer

    profile = catalog.profile_of(h)
    api = connect(kubeconfig)
    site = catalog.site
    with ExitStack() as stack:
        store = stack.enter_context(open_store(app.state_dir, writable=True))
        stack.enter_context(store.host_lock(h.name))
        if profile.handoff.join is JoinMode.rhcos and not node_state(api, h.name)[1]:
            from provision.cli.launch import listen_address

            split = urlsplit(site.boot_server_url)
            listen = listen_address(f"{split.hostname}:{split.port or 80}")
            stack.enter_context(BootServer(catalog, store, listen, public_url=site.boot_server_url))
        env = HostEnv(
            store=store,
            host=h,
            profile=profile,
            timeouts=profile.timeouts.model_copy(update={"ssh_s": wait_s}),
            progress=PlainProgress(sys.stderr),
            catalog=catalog,
            boot_url=site.boot_server_url,
            netboot_dir=app.files_dir / "netboot",
            profiles_dir=catalog.directory,
            kind="handoff",
        )
        summary = run_handoff(env, api, p["manifests"], p["run_id"], Cancel())
        raise_for(summary)
    facts = summary.facts
    return {
        "join": profile.handoff.join.value,
        "handoff_run": summary.run_id,
        "steps": list(summary.ran),
        "applied": facts.get("applied", []),
        "ready": facts.get("ready"),
        "gpu_capacity": facts.get("gpu_capacity"),
        "state": "handed-off",
    }
