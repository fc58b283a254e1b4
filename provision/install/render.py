"""Render a host's kickstart, iPXE script and dnsmasq reservations from the catalog (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from kickstart.netboot import DhcpHost, DnsmasqSpec, render_dnsmasq, render_ipxe
from kickstart.render import RenderError, render_kickstart
from provision.install.spec import build_install_spec, build_ipxe_spec, resolve_boot_disks
from provision.model.catalog import HOSTS_FILE, Catalog
from provision.model.errors import BadInput
from provision.model.grammar import boot_mac_problem, ssh_user_problem
from provision.model.hosts import DiskId, Host


def host_where(catalog: Catalog, host: Host, field: str = "boot_disks") -> str:
    """file:line of a host's field in hosts.yaml (its entry's line when the field is absent)."""
    doc = catalog.documents.get(HOSTS_FILE)
    path = catalog.directory / HOSTS_FILE
    if doc is None:
        return str(path)
    index = next((i for i, h in enumerate(catalog.hosts.values()) if h.name == host.name), 0)
    return f"{path}:{doc.line_of(('hosts', index, field))}"


def _check_host(catalog: Catalog, host: Host, *, ssh_user: bool) -> None:
    """The rules between files that `lint` reports as errors: here they are bad input."""
    problems = [("boot_mac", boot_mac_problem(host.boot_mac, [i.mac for i in host.interfaces]))]
    if ssh_user:
        problems.append(("ssh_user", ssh_user_problem(host.ssh_user, catalog.site.admin.name)))
    for field, problem in problems:
        if problem:
            raise BadInput(f"{host_where(catalog, host, field)}: hosts[{host.name}].{field}: {problem}")


def kickstart_for(
    catalog: Catalog, host: Host, token: str, server_url: str, inspected: tuple[DiskId, ...] = ()
) -> str:
    """The kickstart; boot disks from the inventory's `boot_disks`, else from `inspected`."""
    profile = catalog.profile_of(host)
    _check_host(catalog, host, ssh_user=True)
    disks = resolve_boot_disks(profile, host, inspected, where=host_where(catalog, host))
    spec = build_install_spec(profile, host, catalog.site, disks, token, server_url)
    try:
        return render_kickstart(spec)
    except RenderError as exc:
        raise BadInput(f"kickstart for {host.name}: {exc}") from None


def ipxe_for(catalog: Catalog, host: Host, token: str, server_url: str) -> str:
    _check_host(catalog, host, ssh_user=False)
    spec = build_ipxe_spec(catalog.profile_of(host), host, catalog.site, server_url, token)
    try:
        return render_ipxe(spec)
    except RenderError as exc:
        raise BadInput(f"iPXE script for {host.name}: {exc}") from None


def dnsmasq_for(
    catalog: Catalog,
    tokens: Mapping[str, str],
    server_url: str,
    interface: str,
    subnet: str,
    tftp_root: str,
    ipv6_prefix: str | None = None,
    leasefile: str | None = None,
) -> str:
    """dnsmasq's config for the hosts being installed now (host name -> that run's token).

    Reservations by boot MAC with the inventory's address: only these machines get a lease.
    """
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise BadInput(
            f"subnet: expected an IPv4 network like 10.77.0.0/24, got {subnet!r} ({exc})"
        ) from None
    reservations = []
    for name, token in sorted(tokens.items()):
        host = catalog.host(name)
        nic = next((i for i in host.interfaces if i.mac == host.boot_mac), None)
        if nic is None or nic.address is None:
            raise BadInput(
                f"{host_where(catalog, host, 'interfaces')}: hosts[{name}].interfaces: expected the boot MAC "
                f"{host.boot_mac} with an address to reserve, got none"
            )
        ip = ipaddress.IPv4Interface(nic.address).ip
        if ip not in net:
            raise BadInput(f"hosts[{name}]: expected an address in {net}, got {ip}")
        url = f"{server_url.rstrip('/')}/ipxe/{name}?token={token}"
        reservations.append(DhcpHost(name=name, mac=host.boot_mac, ipv4=str(ip), script_url=url))
    spec = DnsmasqSpec(
        interface=interface,
        subnet=str(net.network_address),
        netmask=str(net.netmask),
        tftp_root=tftp_root,
        hosts=tuple(reservations),
        ipv6_prefix=ipv6_prefix,
        leasefile=leasefile,
    )
    try:
        return render_dnsmasq(spec)
    except RenderError as exc:
        raise BadInput(f"dnsmasq config: {exc}") from None
