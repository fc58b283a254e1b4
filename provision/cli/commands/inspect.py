"""`provision inspect HOST`: read the hardware through the BMC, before any OS, and validate it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from burnin.schema import Evidence, Verdict, to_dict
from provision.acceptance.inspection import EVIDENCE_ID, inspect_findings, overall
from provision.bmc.inventory import collect_inventory
from provision.bmc.posture import read_posture
from provision.bmc.redfish import connect
from provision.cli.app import App, emit
from provision.model.errors import VerdictFailed
from provision.store.state import HostState, RunStatus, StateStore

# An inspection may move a host to `inspected` only from these; a host further along keeps its
# state (re-inspecting an accepted host must not undo its acceptance), and the run records it.
INSPECTABLE = {None, HostState.enrolled, HostState.inspected, HostState.rejected, HostState.maintenance}

ORDER = {"fail": 0, "inconclusive": 1, "warn": 2, "pass": 3}


def _summary(inv: dict[str, Any]) -> str:
    present = [d for d in inv["dimms"] if d["present"]]
    return (
        f"{len(inv['cpus'])} CPUs, {len(present)}/{len(inv['dimms'])} DIMM slots populated, "
        f"{len(inv['gpus'])} GPUs, {len(inv['drives'])} drives, {len(inv['nics'])} NICs, "
        f"{len(inv['pcie'])} PCIe devices"
    )


def _human(data: dict[str, Any]) -> str:
    inv = data["inventory"]
    lines = [
        f"{data['host']} ({data['profile']}) via {data['bmc']}: {data['verdict'].upper()}",
        f"  {_summary(inv)}",
    ]
    counts = Counter(f["verdict"] for f in data["findings"])
    lines.append("  findings: " + ", ".join(f"{counts[v]} {v}" for v in ORDER if counts[v]))
    for f in sorted(data["findings"], key=lambda f: ORDER[f["verdict"]]):
        if f["verdict"] != "pass":
            lines.append(
                f"  {f['verdict'].upper():<12} {f['check']:<18} {f['component']}: "
                f"expected {f['expected']}, observed {f['observed']}"
            )
    lines += [f"  gap: {area}: {why}" for area, why in inv["gaps"].items()]
    return "\n".join(lines)


@click.command()
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: inventory and findings at the top level.")
@click.pass_obj
def inspect(app: App, host: str, as_json: bool) -> None:
    """Read HOST's hardware through its BMC (Redfish), validate it against the profile.

    Read-only. Exit 0 when nothing fails, 1 when a finding fails, 3 when the BMC cannot be read.
    What the BMC does not expose is inconclusive, never pass.
    """
    entry = app.catalog.host(host)
    profile = app.catalog.profile_of(entry)
    with connect(entry.bmc) as bmc, bmc.resources() as fetch:  # each resource once, $expand if offered
        inventory = collect_inventory(fetch, entry.bmc.system)
        posture = read_posture(fetch, entry.bmc.system)
        retries = bmc.retries
    findings = inspect_findings(profile, inventory, entry, posture)
    verdict = overall(findings)
    data = {
        "host": host,
        "profile": profile.name,
        "bmc": entry.bmc.url,
        "verdict": verdict.value,
        "bmc_retries": retries,
        "inventory": inventory.to_dict(),
        "findings": [to_dict(f) for f in findings],
    }
    failed = [f for f in findings if f.verdict is Verdict.FAIL]
    data["run_id"], evidence = _store(app, host, data, failed=bool(failed))
    data["evidence"] = [to_dict(evidence)]
    emit(data, as_json, _human)
    if failed:
        raise VerdictFailed(
            f"{host}: {len(failed)} inspection finding(s) failed: " + ", ".join(f.id for f in failed[:5])
        )


def _store(app: App, host: str, data: dict[str, Any], failed: bool) -> tuple[str, Evidence]:
    """Journal the inspection: the inventory and findings as documents of an `inspect` run, and the
    evidence the findings point at (the stored inventory, by path and sha256). The documents hold
    no secret: the walker never sees the credentials."""
    with StateStore.open(app.state_dir) as store:
        run = store.create_run(host, "inspect")
        ref = store.put_document(run.id, "inventory-redfish.json", data["inventory"])
        evidence = Evidence(
            id=EVIDENCE_ID,
            command=["redfish", "GET", f"{data['bmc']}/redfish/v1/ and every resource it links"],
            artifact=str(ref.path.relative_to(store.state_dir)),
            sha256=ref.sha256,
            excerpt=_summary(data["inventory"]),
        )
        store.put_document(
            run.id,
            "findings-redfish.json",
            {"verdict": data["verdict"], "findings": data["findings"], "evidence": [to_dict(evidence)]},
        )
        store.finish_run(run.id, RunStatus.failed if failed else RunStatus.succeeded)
        if store.get_host_state(host) in INSPECTABLE:
            store.set_host_state(host, HostState.inspected, reason=f"redfish inspection: {data['verdict']}")
        return run.id, evidence
