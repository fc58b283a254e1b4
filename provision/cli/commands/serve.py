"""`provision serve`: run the boot server in the foreground until interrupted."""

from __future__ import annotations

import logging
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import click

from provision.cli.app import App
from provision.flow.metrics import FleetMetrics, parse_metrics_listen, serving, store_states
from provision.install.bootserver import BootServer
from provision.model.errors import BadInput
from provision.store.state import StateStore


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--listen: expected ADDRESS:PORT like 127.0.0.1:8080, got {listen!r}")
    return host.strip("[]"), int(port)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="Address to serve on.")
@click.option("--url", "public_url", help="URL installers use to reach this server [default: http://LISTEN].")
@click.option(
    "--images",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Directory with vmlinuz and initrd.img [default: site boot_images_dir].",
)
@click.option(
    "--metrics-listen",
    metavar="ADDRESS:PORT",
    help="Also serve Prometheus metrics (hosts per state) on http://ADDRESS:PORT/metrics [default: off].",
)
@click.pass_obj
def serve(
    app: App, listen: str, public_url: str | None, images: Path | None, metrics_listen: str | None
) -> None:
    """Run the boot server: iPXE scripts, kickstarts and install callbacks."""
    address = parse_listen(listen)
    metrics_address = parse_metrics_listen(metrics_listen) if metrics_listen else None
    catalog = app.catalog
    site_images = catalog.site.boot_images_dir
    images_dir = images or (Path(site_images) if site_images else None)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    with StateStore.open(app.state_dir) as store, ExitStack() as stack:
        if metrics_address:
            stack.enter_context(serving(FleetMetrics(store_states(store, catalog.hosts)), metrics_address))
        server = BootServer(catalog, store, address, public_url=public_url, images_dir=images_dir)
        signal.signal(signal.SIGTERM, _stop)
        try:
            server.serve_forever()
        finally:
            server.stop()
