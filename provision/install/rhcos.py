"""`join: rhcos`: what the boot chain serves an accepted host to reinstall it with RHCOS. Pure.

The same chain as the Rocky install (firmware PXE -> iPXE -> a per-host script with the run's token),
but the script boots the RHCOS live kernel, initramfs and rootfs from the site's mirror, and the live
system's coreos-installer writes RHCOS to the first boot disk with this host's Ignition config. On
its first boot Ignition builds the RAID1 boot mirror over both boot disks, writes the host's name and
network, fetches the pool's config from the machine-config server, and a one-shot unit tells the boot
server RHCOS is up. The kubelet then asks for its certificates (provision.handoff.join approves them).

Routes on the boot server (provision.install.rhcos_routes), each only with the handoff run's token:
  GET  /rhcos/<host>?token=T        the iPXE script
  GET  /ignition/<host>?token=T     the Ignition config
  POST /rhcos/<host>/installed      RHCOS booted (Authorization: Bearer T; body: its SSH host keys)
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from kickstart.render import RenderError, check_safe, check_token
from provision.install.ignition import IgnitionSpec, Keyfile, render_ignition
from provision.install.render import host_where
from provision.install.spec import installer_ip_arg, resolve_boot_disks
from provision.model.catalog import SITE_FILE, Catalog
from provision.model.errors import BadInput
from provision.model.handoff import JoinMode, Rhcos, pool_problem
from provision.model.hosts import DiskId, Host
from provision.model.profile import NicRole, Profile

IPXE_ROUTE = "rhcos"
IGNITION_ROUTE = "ignition"
INSTALLED_EVENT = "installed"


@dataclass(frozen=True)
class RhcosPlan:
    """What one host's RHCOS install is: the iPXE script and the Ignition config (token included)."""

    host: str
    pool: str
    install_dev: str  # /dev/disk/by-id/... of the first boot disk
    ipxe: str
    ignition: dict[str, Any]

    def ignition_json(self) -> str:
        return json.dumps(self.ignition, indent=2, sort_keys=True)


def site_rhcos(catalog: Catalog) -> Rhcos:
    if catalog.site.rhcos is None:
        raise BadInput(
            f"{catalog.directory / SITE_FILE}: rhcos: expected the RHCOS live images and cluster_domain "
            "(kernel_url, initramfs_url, rootfs_url, cluster_domain) for handoff.join: rhcos, got none"
        )
    return catalog.site.rhcos


def config_pool(profile: Profile) -> str:
    """The pool the host first boots with: handoff.config_pool, else platform.pool (by grammar)."""
    pool = profile.handoff.config_pool or profile.platform.pool
    problem = pool_problem(pool)
    if problem:
        raise BadInput(f"profile {profile.name}: platform.pool: {problem} (or set handoff.config_pool)")
    return pool


def _keyfiles(profile: Profile, host: Host) -> tuple[Keyfile, ...]:
    roles = {n.name: n.role for n in profile.network}
    # The default route goes out the management network (as the kickstart does), else the boot NIC.
    mgmt = next((i for i in host.interfaces if roles.get(i.name) is NicRole.management), None)
    route_via = mgmt or next((i for i in host.interfaces if i.mac == host.boot_mac), None)
    return tuple(
        Keyfile(
            name=i.name,
            mac=i.mac,
            address=i.address,
            gateway=i.gateway if i is route_via else None,
            nameservers=i.nameservers,
        )
        for i in host.interfaces
    )


def urls(server_url: str, host: str, token: str) -> dict[str, str]:
    base = server_url.rstrip("/")
    return {
        "ipxe": f"{base}/{IPXE_ROUTE}/{host}?token={token}",
        "ignition": f"{base}/{IGNITION_ROUTE}/{host}?token={token}",
        "installed": f"{base}/{IPXE_ROUTE}/{host}/{INSTALLED_EVENT}",
    }


def render_rhcos_ipxe(
    host: str, rhcos: Rhcos, install_dev: str, ignition_url: str, ip_arg: str, extra: tuple[str, ...]
) -> str:
    """The iPXE script: every value by grammar (check_safe, as the install script's renderer does)."""
    for field, value in (
        ("host", host),
        ("kernel URL", rhcos.kernel_url),
        ("initramfs URL", rhcos.initramfs_url),
        ("rootfs URL", rhcos.rootfs_url),
        ("install device", install_dev),
        ("ip", ip_arg),
        *(("kernel argument", a.replace(",", "")) for a in extra),
    ):
        check_safe(field, value)
    if any(c in ignition_url for c in " \"'\n\\$;&"):
        raise RenderError(f"ignition URL: expected no spaces, quotes, $, ; or &, got {ignition_url!r}")
    args = " ".join(
        [
            "initrd=main",
            f"coreos.live.rootfs_url={rhcos.rootfs_url}",
            f"coreos.inst.install_dev={install_dev}",
            f"coreos.inst.ignition_url={ignition_url}",
            f"ip={ip_arg}",
            *extra,
        ]
    )
    return "\n".join(
        [
            "#!ipxe",
            f"# Reinstall {host} with RHCOS (handoff.join: rhcos). Served only during its handoff run.",
            f"echo inferno-provision: installing RHCOS on {host} from ${{netX/mac}}",
            f"kernel {rhcos.kernel_url} {args}",
            f"initrd --name main {rhcos.initramfs_url}",
            "boot",
            "",
        ]
    )


def rhcos_plan(
    catalog: Catalog, host: Host, token: str, server_url: str, inspected: tuple[DiskId, ...] = ()
) -> RhcosPlan:
    """The iPXE script and Ignition config for `host`; bad input names the file and field."""
    profile = catalog.profile_of(host)
    if profile.handoff.join is not JoinMode.rhcos:
        raise BadInput(f"profile {profile.name}: handoff.join: expected rhcos, got {profile.handoff.join}")
    rhcos = site_rhcos(catalog)
    pool = config_pool(profile)
    disks = resolve_boot_disks(profile, host, inspected, where=host_where(catalog, host))
    devices = (f"/dev/{disks[0]}", f"/dev/{disks[1]}")
    try:
        check_token(token)
        for i in host.interfaces:
            if i.address:
                ipaddress.IPv4Interface(i.address)  # by grammar already; a second line of defence
        links = urls(server_url, host.name, token)
        extra: tuple[str, ...] = (f"console={catalog.site.console}",) if catalog.site.console else ()
        nic = next((i for i in host.interfaces if i.mac == host.boot_mac), None)
        if nic is not None and nic.address:
            extra += tuple(f"nameserver={ns}" for ns in nic.nameservers)
        ipxe = render_rhcos_ipxe(
            host.name, rhcos, devices[0], links["ignition"], installer_ip_arg(host), extra
        )
    except RenderError as exc:
        raise BadInput(f"RHCOS iPXE script for {host.name}: {exc}") from None
    spec = IgnitionSpec(
        hostname=host.name,
        merge_url=rhcos.config_url(pool),
        root_ca=rhcos.root_ca,
        boot_disks=devices,
        interfaces=_keyfiles(profile, host),
        callback_url=links["installed"],
        token=token,
    )
    return RhcosPlan(host.name, pool, devices[0], ipxe, render_ignition(spec))
