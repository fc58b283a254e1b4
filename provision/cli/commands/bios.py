"""`provision bios HOST [--json] [--apply]`: the host's BIOS settings against its profile's `bios:`
block; `--apply` sets the ones that differ, resets the host and reads them back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from provision.bmc.redfish import connect
from provision.cli.app import App, emit
from provision.flow.bios_steps import apply, evaluate
from provision.flow.waits import StepTimeout
from provision.model.bios import BiosSettings
from provision.model.errors import BadInput, VerdictFailed
from provision.store.state import HostState, RunStatus, StateStore

T = TypeVar("T")
ORDER = {"fail": 0, "inconclusive": 1, "warn": 2, "pass": 3}


def _wait(what: str, poll: Callable[[], T | None], timeout_s: float, interval_s: float = 1.0) -> T:
    start = time.monotonic()
    while True:
        got = poll()
        if got is not None:
            return got
        if time.monotonic() - start >= timeout_s:
            raise StepTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def _human(data: dict[str, Any]) -> str:
    bios = data["bios"]
    head = f"{data['host']} ({data['profile']}) via {data['bmc']}: {data['verdict'].upper()}"
    lines = [head]
    if bios is None:
        lines.append("  the BMC exposes no Bios resource")
    else:
        registry = bios["registry"] or "none named"
        read = "read" if bios["registry_read"] else (bios["registry_gap"] or "not read")
        lines.append(
            f"  vendor map: {data['vendor'] or 'unknown'}; {len(bios['attributes'])} attributes; "
            f"registry: {registry} ({read})"
        )
        for name, value in bios["pending"].items():
            lines.append(f"  pending: {name} = {value} (applies at the next reset)")
    if not data["findings"]:
        lines.append("  the profile sets no BIOS attribute")
    for name, value in data["changes"].items():
        lines.append(f"  set: {name} = {value}")
    if data["power"]:
        lines.append(f"  reset: {' -> '.join(data['power'])}")
    for f in sorted(data["findings"], key=lambda f: ORDER[f["verdict"]]):
        lines.append(
            f"  {f['verdict'].upper():<12} {f['component']}: "
            f"expected {f['expected']}, observed {f['observed']}"
        )
    return "\n".join(lines)


def _data(
    host: str, profile: str, url: str, applied: bool, report: dict[str, Any], retries: int
) -> dict[str, Any]:
    return {"host": host, "profile": profile, "bmc": url, "apply": applied, **report, "bmc_retries": retries}


@click.command()
@click.argument("host")
@click.option("--apply", "do_apply", is_flag=True, help="Set what differs, reset HOST, read back.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def bios(app: App, host: str, do_apply: bool, as_json: bool) -> None:
    """Show HOST's BIOS settings against its profile's `bios:` block (current vs desired).

    --apply PATCHes the attributes that differ to Bios/Settings, power-cycles HOST so the BIOS
    takes them, reads them back and restores the power state (an Off host is turned off again).
    Names and values are checked against the BMC's AttributeRegistry first when it offers one;
    nothing is sent when one is refused. Exit 0 when every setting holds, 1 when one differs
    (after --apply: still differs), 2 when --apply is refused, 3 when the BMC cannot be read.
    """
    entry = app.catalog.host(host)
    profile = app.catalog.profile_of(entry)
    settings = profile.bios or BiosSettings()
    if not do_apply:  # a look: read-only, nothing stored
        with connect(entry.bmc) as bmc:
            report = evaluate(bmc, settings)
        data = _data(host, profile.name, entry.bmc.url, False, report.to_dict(), bmc.retries)
    else:
        # A change: never under a burn-in, never beside another command holding the host (a
        # `provision host` run holds it throughout); journaled as a `bios` run.
        with StateStore.open(app.state_dir) as store:
            if store.get_host_state(host) is HostState.burning_in:
                raise BadInput(f"{host}: a burn-in is running: no BIOS change until it ends")
            with store.host_lock(host), connect(entry.bmc) as bmc:
                report = apply(
                    bmc,
                    settings,
                    host=host,
                    power_timeout_s=entry.bmc.power_timeout_s,
                    readback_timeout_s=profile.timeouts.power_s,
                    wait=_wait,
                    poll_s=min(profile.timeouts.poll_s, 5.0),
                )
            data = _data(host, profile.name, entry.bmc.url, True, report.to_dict(), bmc.retries)
            run = store.create_run(host, "bios")
            store.put_document(run.id, "bios.json", data)
            store.finish_run(run.id, RunStatus.failed if report.failed else RunStatus.succeeded)
            data["run_id"] = run.id
    failed = report.failed
    emit(data, as_json, _human)
    if failed:
        when = "after --apply" if do_apply else "(provision bios --apply sets them)"
        raise VerdictFailed(
            f"{host}: {len(failed)} BIOS setting(s) differ {when}: "
            + ", ".join(f.component for f in failed[:5])
        )
