"""`provision firmware HOST`: every firmware the BMC reports, judged for uniformity and against the
profile's baseline; with `--update COMPONENT=IMAGE`, one update through the BMC's UpdateService."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import click

from burnin.schema import Verdict, to_dict
from provision.acceptance.firmware import check_firmware_state, firmware_items
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import connect
from provision.cli.app import App, emit
from provision.cli.launch import listen_address
from provision.flow.firmware_steps import Serve, run_update
from provision.install.bootserver import BootServer
from provision.model.errors import BadInput, ExternalError, VerdictFailed
from provision.store.state import StateStore

ORDER = {"fail": 0, "inconclusive": 1, "warn": 2, "pass": 3}
APPLY_TIMES = ("Immediate", "OnReset")


def _say(host: str, line: str) -> None:
    click.echo(f"{host}: {line}", err=True)


def _human(data: dict[str, Any]) -> str:
    lines = [f"{data['host']} ({data['profile']}) via {data['bmc']}: {data['verdict'].upper()}"]
    rows = [("COMPONENT", "PART", "MODEL", "VERSION", "UPDATEABLE")]
    for it in data["firmware"]:
        upd = {True: "yes", False: "no", None: "?"}[it["updateable"]]
        rows.append((it["component"], _part(it), it["model"] or "-", it["version"] or "-", upd))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + r[4] for r in rows]
    counts = Counter(f["verdict"] for f in data["findings"])
    lines.append("  findings: " + (", ".join(f"{counts[v]} {v}" for v in ORDER if counts[v]) or "none"))
    for f in sorted(data["findings"], key=lambda f: ORDER[f["verdict"]]):
        if f["verdict"] != "pass":
            lines.append(
                f"  {f['verdict'].upper():<12} {f['check']:<18} {f['component']}: "
                f"expected {f['expected']}, observed {f['observed']}"
            )
    lines += [f"  gap: {area}: {why}" for area, why in data["gaps"].items()]
    if data.get("update"):
        u = data["update"]
        lines.append(
            f"  update {u['component']}: {u['before'] or '-'} -> {u['after'] or '-'} ({u['verdict']})"
        )
    return "\n".join(lines)


def _part(it: dict[str, Any]) -> str:
    bits = [b for b in (it["location"], it["serial"] and f"serial {it['serial']}") if b]
    return str(it["name"]) + (f" ({', '.join(bits)})" if bits else "") + " "


def _embedded(app: App, progress: Callable[[str], None]) -> Serve:
    """The boot server for a standalone update, at the site's boot_server_url, as `provision host`
    embeds it; where that address is taken (`provision serve` runs) the offer goes through that one."""

    @contextmanager
    def serve(store: StateStore) -> Iterator[object]:
        url = app.catalog.site.boot_server_url
        split = urlsplit(url)
        try:
            server: BootServer | None = BootServer(
                app.catalog, store, listen_address(f"{split.hostname}:{split.port or 80}"), public_url=url
            )
        except ExternalError as exc:
            progress(f"{exc}: offering the image through the server already there")
            server = None
        with server if server is not None else nullcontext():
            yield server

    return serve


def _update_arg(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    component, sep, image = value.partition("=")
    if not sep or not component.strip() or not image.strip():
        raise click.BadParameter(f"expected COMPONENT=IMAGE (e.g. bios=images/bios-3.2.bin), got {value!r}")
    return component.strip(), image.strip()


@click.command()
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: firmware rows and findings.")
@click.option(
    "--update",
    metavar="COMPONENT=IMAGE",
    callback=_update_arg,
    help="Update one component (a part name from the listing, or a kind: bios, bmc...) from IMAGE: "
    "a local file (multipart push where the BMC offers it, else served by the boot server at a "
    "token-gated URL for SimpleUpdate) or an http(s) URL the BMC fetches (SimpleUpdate).",
)
@click.option("--image-version", help="The version IMAGE installs (read back after the update).")
@click.option(
    "--apply-time",
    type=click.Choice(APPLY_TIMES),
    default="Immediate",
    show_default=True,
    help="Sent as @Redfish.OperationApplyTime: OnReset installs at the next reset (a power cycle).",
)
@click.option("--allow-downgrade", is_flag=True, help="Allow an image older than what runs now.")
@click.pass_obj
def firmware(
    app: App,
    host: str,
    as_json: bool,
    update: tuple[str, str] | None,
    image_version: str | None,
    apply_time: str,
    allow_downgrade: bool,
) -> None:
    """Every firmware HOST's BMC reports (BIOS, BMC, CPLD, GPU VBIOS, drives, NICs, PSUs), checked
    for uniformity across identical parts and against the profile's `firmware:` baseline.

    Exit 0 when nothing fails, 1 when a finding fails (or an update did not take), 2 when an update
    is refused (a downgrade, a part not updateable, a host burning in), 3 when the BMC cannot be read.
    A version the BMC does not report is inconclusive, never pass.
    """
    entry = app.catalog.host(host)
    profile = app.catalog.profile_of(entry)
    result: dict[str, Any] | None = None
    if update is not None:
        if image_version is None:
            raise BadInput("--update needs --image-version: the version the image installs, to read back")
        say = functools.partial(_say, host)
        result = run_update(
            app.state_dir, entry, update[0], update[1], image_version, apply_time, allow_downgrade, say,
            boot_url=app.catalog.site.boot_server_url, serve=_embedded(app, say),
        )  # fmt: skip
    with connect(entry.bmc) as bmc, bmc.resources() as fetch:
        inventory = collect_inventory(fetch, entry.bmc.system)
    items = firmware_items(inventory)
    findings = check_firmware_state(profile, inventory)
    if result is not None:
        findings.append(result.pop("finding"))
    verdict = Verdict.worst([f.verdict for f in findings]) if findings else Verdict.PASS
    data = {
        "host": host,
        "profile": profile.name,
        "bmc": entry.bmc.url,
        "verdict": verdict.value,
        "firmware": [asdict(it) for it in items],
        "findings": [to_dict(f) for f in findings],
        "gaps": {k: v for k, v in inventory.gaps.items() if k == "firmware"},
        "update": result,
    }
    emit(data, as_json, _human)
    failed = [f for f in findings if f.verdict is Verdict.FAIL]
    if failed:
        raise VerdictFailed(
            f"{host}: {len(failed)} firmware finding(s) failed: " + ", ".join(f.id for f in failed[:5])
        )
