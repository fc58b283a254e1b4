"""`provision boot HOST pxe|disk|cd|http`: set and verify the next boot device through the BMC."""

from __future__ import annotations

from typing import Any

import click

from provision.app import App, emit
from provision.boot_override import BootDevice, BootMode, BootRequest, boot_from_media, eject_all, set_boot
from provision.errors import BadInput
from provision.redfish import connect


def _human(data: dict[str, Any]) -> str:
    lines = [
        f"{data['host']}: next boot {data['target']} ({data['enabled']}, {data['mode'] or 'mode not reported'})"
        f" verified in {data['elapsed_s']:.1f} s, {data['attempts']} attempt(s)"
    ]
    if data.get("media"):
        lines.append(f"  virtual media: {data['media']}")
    if data.get("http_boot_uri"):
        lines.append(f"  HTTP boot URI: {data['http_boot_uri']}")
    lines += [f"  ejected: {path}" for path in data.get("ejected", [])]
    lines += [f"  note: {note}" for note in data.get("notes", [])]
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
    as_json: bool,
) -> None:
    """Set HOST's next boot device (one-time unless --persistent), read it back and verify it.

    pxe: network boot; disk: local disk, ejecting any virtual media; cd: insert --virtual-media URL
    and boot it once; http: UEFI HTTP boot from --http-boot URI.
    """
    dev = BootDevice(device)
    if media_url and dev is not BootDevice.cd:
        raise BadInput(f"--virtual-media: expected device cd, got {device}")
    if http_uri and dev is not BootDevice.http:
        raise BadInput(f"--http-boot: expected device http, got {device}")
    entry = app.catalog.host(host)
    req = BootRequest(
        dev,
        persistent=persistent,
        mode=BootMode.uefi if mode == "uefi" else BootMode.legacy,
        http_boot_uri=http_uri,
        media_url=media_url,
    )
    with connect(entry.bmc) as bmc:
        if dev is BootDevice.cd:
            result = boot_from_media(bmc, req)
        else:
            result = set_boot(bmc, req)
            if dev is BootDevice.disk:
                result.ejected = eject_all(bmc)
    emit({"host": host, "bmc": entry.bmc.url, **result.to_dict()}, as_json, _human)
