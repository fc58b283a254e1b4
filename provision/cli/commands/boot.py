"""`provision boot HOST pxe|disk|cd|http`: set and verify the next boot device through the BMC."""

from __future__ import annotations

from typing import Any

import click

from provision.bmc.boot_override import (
    BootDevice,
    BootMode,
    BootRequest,
    boot_from_media,
    check_request,
    eject_all,
    set_boot,
)
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import connect
from provision.cli.app import App, emit


def _human(data: dict[str, Any]) -> str:
    mode = data["mode"] or "mode not reported"
    lines = [
        f"{data['host']}: next boot {data['target']} ({data['enabled']}, {mode})"
        f" verified in {data['elapsed_s']:.1f} s, {data['attempts']} attempt(s)"
    ]
    if data.get("media"):
        lines.append(f"  virtual media: {data['media']}")
    if data.get("http_boot_uri"):
        lines.append(f"  HTTP boot URI: {data['http_boot_uri']}")
    lines += [f"  ejected: {path}" for path in data.get("ejected", [])]
    lines += [f"  note: {note}" for note in data.get("notes", [])]
    if data.get("power"):
        power = data["power"]
        lines.append(
            f"  power {power['state']} after {' -> '.join(power['steps'])} in {power['elapsed_s']:.1f} s"
        )
    return "\n".join(lines)


@click.command()
@click.argument("host")
@click.argument("device", type=click.Choice([d.value for d in BootDevice]))
@click.option("--persistent", is_flag=True, help="Keep the override past the next boot.")
@click.option(
    "--mode",
    type=click.Choice(["uefi", "legacy"]),
    default="uefi",
    show_default=True,
    help="Boot mode sent with the target.",
)
@click.option("--virtual-media", "media_url", metavar="URL", help="ISO to insert (device cd).")
@click.option("--http-boot", "http_uri", metavar="URI", help="UEFI HTTP boot URI (device http).")
@click.option(
    "--restart",
    is_flag=True,
    help="Once the override reads back as set, power-cycle HOST (power it on if off) and wait for On.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def boot(
    app: App,
    host: str,
    device: str,
    persistent: bool,
    mode: str,
    media_url: str | None,
    http_uri: str | None,
    restart: bool,
    as_json: bool,
) -> None:
    """Set HOST's next boot device (one-time unless --persistent), read it back and verify it.

    pxe: network boot; disk: local disk, ejecting any virtual media; cd: insert --virtual-media URL
    and boot it once; http: UEFI HTTP boot from --http-boot URI.
    """
    dev = BootDevice(device)
    entry = app.catalog.host(host)
    req = BootRequest(
        dev,
        persistent=persistent,
        mode=BootMode.uefi if mode == "uefi" else BootMode.legacy,
        http_boot_uri=http_uri,
        media_url=media_url,
    )
    check_request(req)
    with connect(entry.bmc) as bmc:
        if dev is BootDevice.cd:
            result = boot_from_media(bmc, req)
        else:
            result = set_boot(bmc, req)
            if dev is BootDevice.disk:
                result.ejected = eject_all(bmc)
        data: dict[str, Any] = {"host": host, "bmc": entry.bmc.url, **result.to_dict(), "power": None}
        # Only after the read-back: powering on with an unverified override boots the wrong thing.
        if restart:
            data["power"] = set_power(bmc, PowerAction.cycle, entry.bmc.power_timeout_s).to_dict()
        data["bmc_retries"] = bmc.retries
    emit(data, as_json, _human)
