"""`provision kickstart HOST`: print or write HOST's Rocky Linux kickstart."""

from __future__ import annotations

from pathlib import Path

import click

from provision.app import App
from provision.errors import BadInput
from provision.installspec import NO_RUN_TOKEN
from provision.kickstarts import ipxe_for, kickstart_for


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
@click.pass_obj
def kickstart(
    app: App, host: str, output: str | None, token: str, server_url: str | None, ipxe: bool
) -> None:
    """Render HOST's Rocky Linux kickstart."""
    catalog = app.catalog
    entry = catalog.host(host)
    url = server_url or catalog.site.boot_server_url
    render = ipxe_for if ipxe else kickstart_for
    text = render(catalog, entry, token, url)
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    try:
        # The kickstart carries the run token: readable by its owner only.
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: expected a writable file, got {exc.strerror}") from None
