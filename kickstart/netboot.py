"""The network boot chain's text: a host's iPXE script, its local-boot answer, dnsmasq's config.

Pure, like the kickstart renderer. The chain: firmware PXE -> DHCP (dnsmasq, tagged by client
architecture) -> TFTP undionly.kpxe (BIOS) or snponly.efi (UEFI) -> iPXE -> DHCP again (option 175
says iPXE) -> HTTP iPXE script for that host's MAC, with the run token -> kernel + initrd -> Anaconda.
"""

from __future__ import annotations

from dataclasses import dataclass

from kickstart.render import RenderError, check_safe, render_template


@dataclass(frozen=True)
class IpxeSpec:
    host: str
    kernel_url: str
    initrd_url: str
    ks_url: str
    repo_url: str
    ip_arg: str  # dracut ip=: "dhcp" or client::gateway:netmask:hostname::none
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DhcpHost:
    name: str
    mac: str
    ipv4: str
    script_url: str  # the iPXE script URL, token included: dnsmasq's config is private to the server


@dataclass(frozen=True)
class DnsmasqSpec:
    interface: str
    subnet: str  # network address, e.g. 10.77.0.0: only reserved MACs get a lease ("static")
    netmask: str
    tftp_root: str
    hosts: tuple[DhcpHost, ...]
    ipv6_prefix: str | None = None  # with it, router advertisements: iPXE stops waiting for SLAAC
    lease_time: str = "1h"
    leasefile: str | None = None
    # log-dhcp writes every option sent, the tokenized boot URL included: off unless debugging.
    log_dhcp: bool = False


def render_ipxe(spec: IpxeSpec) -> str:
    for field, value in (
        ("host", spec.host),
        ("kernel URL", spec.kernel_url),
        ("initrd URL", spec.initrd_url),
        ("repo URL", spec.repo_url),
        ("ip", spec.ip_arg),
    ):
        check_safe(field, value)
    if any(c in spec.ks_url for c in " \"'\n"):
        raise RenderError(f"kickstart URL: expected no spaces or quotes, got {spec.ks_url!r}")
    for arg in spec.extra_args:
        check_safe("kernel argument", arg.replace(",", ""))  # console=ttyS0,115200
    return render_template("ipxe/install.ipxe.j2", spec=spec)


def render_ipxe_local(host: str) -> str:
    """What a host whose install finished gets: boot the next device, i.e. its own disks."""
    check_safe("host", host)
    return render_template("ipxe/local.ipxe.j2", host=host)


def render_ipxe_unknown() -> str:
    return render_template("ipxe/local.ipxe.j2", host="")


def render_dnsmasq(spec: DnsmasqSpec) -> str:
    check_safe("interface", spec.interface)
    for host in spec.hosts:
        for field, value in (("host", host.name), ("mac", host.mac), ("ipv4", host.ipv4)):
            check_safe(field, value)
        if any(c in host.script_url for c in " \"'\n,"):
            raise RenderError(f"script URL: expected no spaces, quotes or commas, got {host.script_url!r}")
    return render_template("dnsmasq.conf.j2", spec=spec, tag_of=_tag)


def _tag(name: str) -> str:
    return "h-" + "".join(c if c.isalnum() else "-" for c in name)
