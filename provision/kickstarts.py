"""Render one host's kickstart and iPXE script from the catalog (pure: the catalog is data)."""

from __future__ import annotations

from kickstart.netboot import render_ipxe
from kickstart.render import RenderError, render_kickstart
from provision.catalog import HOSTS_FILE, Catalog
from provision.errors import BadInput
from provision.hosts import DiskId, Host
from provision.installspec import build_install_spec, build_ipxe_spec, resolve_boot_disks


def host_where(catalog: Catalog, host: Host, field: str = "boot_disks") -> str:
    """file:line of a host's field in hosts.yaml (its entry's line when the field is absent)."""
    doc = catalog.documents.get(HOSTS_FILE)
    path = catalog.directory / HOSTS_FILE
    if doc is None:
        return str(path)
    index = next((i for i, h in enumerate(catalog.hosts.values()) if h.name == host.name), 0)
    return f"{path}:{doc.line_of(('hosts', index, field))}"


def kickstart_for(
    catalog: Catalog, host: Host, token: str, server_url: str, inspected: tuple[DiskId, ...] = ()
) -> str:
    profile = catalog.profile_of(host)
    disks = resolve_boot_disks(profile, host, inspected, where=host_where(catalog, host))
    spec = build_install_spec(profile, host, catalog.site, disks, token, server_url)
    try:
        return render_kickstart(spec)
    except RenderError as exc:
        raise BadInput(f"kickstart for {host.name}: {exc}") from None


def ipxe_for(catalog: Catalog, host: Host, token: str, server_url: str) -> str:
    spec = build_ipxe_spec(catalog.profile_of(host), host, catalog.site, server_url, token)
    try:
        return render_ipxe(spec)
    except RenderError as exc:
        raise BadInput(f"iPXE script for {host.name}: {exc}") from None
