"""The boot server's RHCOS routes (`handoff.join: rhcos`), each only with a handoff run's token:

  GET  /rhcos/<host>?token=T        the iPXE script (RHCOS live kernel, initramfs, rootfs)
  GET  /ignition/<host>?token=T     the host's Ignition config (JSON)
  POST /rhcos/<host>/installed      the installed RHCOS's first boot (Bearer T; body: SSH host keys)

A handoff run's token opens these routes only, and an install run's token never opens them: the
Rocky kickstart and the RHCOS config are never served for each other's run. Serving the Ignition
config is recorded as the `rhcos.ignition` event (the live installer fetched it: the install began);
the `installed` callback as `rhcos.installed`, after which the run's tokens are revoked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from provision.install.httpmsg import HttpRequest
from provision.install.rhcos import IGNITION_ROUTE, INSTALLED_EVENT, IPXE_ROUTE, rhcos_plan
from provision.model.catalog import Catalog
from provision.model.hosts import DiskId
from provision.store.state import StateStore

log = logging.getLogger("provision.install.bootserver")

HANDOFF_RUN_KIND = "handoff"  # the run `provision handoff` journals its steps in
ROUTES = (IPXE_ROUTE, IGNITION_ROUTE)
IGNITION_SERVED = "rhcos.ignition"
RHCOS_INSTALLED = "rhcos.installed"
MAX_BODY_BYTES = 64 * 1024

Answer = tuple[int, bytes, str | None, str]  # status, body, host, note


def answer(
    catalog: Catalog,
    store: StateStore,
    server_url: str,
    req: HttpRequest,
    parts: list[str],
    token: str | None,
    inspected: Callable[[str], tuple[DiskId, ...]] | None,
    host_keys: Callable[[str], list[dict[str, str]]],
) -> Answer:
    """One request to an RHCOS route. `host_keys` parses the callback body (the boot server's)."""
    if len(parts) < 2 or parts[1] not in catalog.hosts:
        return 404, b"", None, ""
    host = parts[1]
    run = store.check_token(host, token) if token else None
    if run is None or run.kind != HANDOFF_RUN_KIND or token is None:
        return 403, b"", host, "no running RHCOS install"
    if req.method == "POST":
        if len(parts) != 3 or parts[0] != IPXE_ROUTE or parts[2] != INSTALLED_EVENT:
            return 404, b"", host, ""
        if req.body is None or len(req.body) > MAX_BODY_BYTES:
            return 413, b"", host, ""
        keys = host_keys(req.body.decode("utf-8", errors="replace"))
        if not keys:
            log.warning("RHCOS installed callback from %s carried no SSH host key", host)
            return 400, b"", host, "no SSH host key"
        store.add_event(host, RHCOS_INSTALLED, {"client": "rhcos", "host_keys": keys}, run_id=run.id)
        store.revoke_tokens(run.id)
        return 204, b"", host, f"RHCOS installed, run {run.id}"
    if len(parts) != 2:
        return 404, b"", host, ""
    entry = catalog.hosts[host]
    disks = inspected(host) if inspected and not entry.boot_disks else ()
    plan = rhcos_plan(catalog, entry, token, server_url, disks)
    if parts[0] == IPXE_ROUTE:
        return 200, plan.ipxe.encode(), host, f"RHCOS iPXE, run {run.id}"
    store.add_event(host, IGNITION_SERVED, {"client": "coreos-installer"}, run_id=run.id)
    return 200, json.dumps(plan.ignition).encode(), host, f"Ignition config, run {run.id}"
