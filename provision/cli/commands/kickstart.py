"""`provision kickstart HOST`: print or write HOST's Rocky Linux kickstart."""

from __future__ import annotations

import json
from pathlib import Path

import click

from burnin.hardware import inventory_from_dict
from provision.cli.app import App
from provision.install.render import ipxe_for, kickstart_for
from provision.install.spec import NO_RUN_TOKEN, boot_disks_from_inventory
from provision.model.errors import BadInput
from provision.model.files import MAX_INPUT_BYTES, FileRefused, read_regular, size_text, write_private
from provision.model.hosts import DiskId
from provision.model.profile import Profile


@click.command()
@click.argument("host")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@click.option(
    "--token",
    default=NO_RUN_TOKEN,
    show_default=True,
    help="Run token to embed in the callbacks (the boot server embeds the run's own).",
)
@click.option("--server", "server_url", help="Boot server URL for callbacks [default: site boot_server_url].")
@click.option("--ipxe", is_flag=True, help="Render HOST's iPXE install script instead.")
@click.option(
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Hardware inventory JSON (from inspection) to take the boot pair from, when hosts.yaml lists none.",
)
@click.pass_obj
def kickstart(
    app: App,
    host: str,
    output: str | None,
    token: str,
    server_url: str | None,
    ipxe: bool,
    inventory: Path | None,
) -> None:
    """Render HOST's Rocky Linux kickstart."""
    catalog = app.catalog
    entry = catalog.host(host)
    url = server_url or catalog.site.boot_server_url
    if ipxe:
        text = ipxe_for(catalog, entry, token, url)
    else:
        inspected = _inspected(catalog.profile_of(entry), host, inventory) if inventory else ()
        text = kickstart_for(catalog, entry, token, url, inspected)
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    try:
        # The kickstart carries the run token: a new file readable by its owner only, renamed over
        # FILE (an existing file's wider mode is not kept), never written through a symlink.
        write_private(path, text.encode("utf-8"))
    except FileRefused as exc:
        raise BadInput(f"{path}: expected a regular file or a new one, got {exc.got}") from None
    except OSError as exc:
        raise BadInput(f"{path}: expected a writable file, got {exc.strerror}") from None


def _inspected(profile: Profile, host: str, path: Path) -> tuple[DiskId, ...]:
    try:
        blob, _ = read_regular(path, MAX_INPUT_BYTES)
        data = json.loads(blob.decode("utf-8"))
        drives = inventory_from_dict(data).drives
    except FileRefused as exc:
        raise BadInput(
            f"{path}: expected a hardware inventory JSON, a regular file of at most "
            f"{size_text(MAX_INPUT_BYTES)}, got {exc.got}"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise BadInput(f"{path}: expected a hardware inventory JSON, got {exc}") from None
    return boot_disks_from_inventory(profile, host, drives)
