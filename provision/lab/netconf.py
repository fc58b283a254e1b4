"""The lab network's DHCP/TFTP/RA configuration for dnsmasq. Pure: text out.

The chain it drives: BIOS + iPXE ROM, or UEFI's own PXE client -> TFTP snponly.efi -> iPXE; iPXE then
asks again (DHCP option 175 marks it) and gets the boot server's script URL. Each lab host gets a
fixed address by MAC, the one its kickstart will set. IPv6 router advertisements are on because
iPXE otherwise waits ~10 s for IPv6 autoconfiguration after DHCPv4.
"""

from __future__ import annotations

from pathlib import Path

from provision.lab.spec import LabNet, LabNode


def script_urls(nodes: tuple[LabNode, ...], boot_url: str, published: dict[str, str]) -> dict[str, str]:
    """Each host's iPXE script URL: the one `provision host` published with its run's token, else
    the boot server's token-less URL (an installed host gets "boot from local disk" there)."""
    base = boot_url.rstrip("/")
    return {n.name: published.get(n.name) or f"{base}/ipxe/{n.name}" for n in nodes}


def render_dnsmasq(
    net: LabNet, nodes: tuple[LabNode, ...], *, tftp_root: Path, leases: Path, urls: dict[str, str]
) -> str:
    lines = [
        "# Written by the lab's DHCP supervisor: DHCP (lab hosts only), TFTP, IPv6 RA. No DNS.",
        "# Holds run tokens in script URLs: readable by root only.",
        "port=0",
        "user=root",  # the lab's files live in the caller's (often 0700) state directory
        f"interface={net.veth_srv}",
        "bind-interfaces",
        f"dhcp-range={net.subnet}.0,static,255.255.255.0,1h",
        "enable-ra",
        f"dhcp-range={net.ipv6_prefix},ra-only",
        f"dhcp-leasefile={leases}",
        "log-dhcp",
        "enable-tftp",
        f"tftp-root={tftp_root}",
        "dhcp-match=set:ipxe,175",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
        "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi",
    ]
    for n in nodes:
        lines.append(f"dhcp-host={n.mac},set:h-{n.name},{net.subnet}.{n.ipv4},{n.name}")
        lines.append(f"dhcp-boot=tag:ipxe,tag:h-{n.name},{urls[n.name]}")
    return "\n".join(lines) + "\n"


def render_qemu_conf() -> str:
    """libvirtd's qemu.conf for a daemon with no systemd and no cgroup delegation."""
    return (
        "# Written by `provision lab up` (private to the lab's libvirtd).\n"
        'user = "root"\n'
        'group = "root"\n'
        "cgroup_controllers = [ ]\n"
        'security_driver = "none"\n'
        'stdio_handler = "file"\n'
    )


def render_sushy_conf(
    *, listen_ip: str, port: int, libvirt_uri: str, cert: Path, key: Path, htpasswd: Path, ovmf_code: Path
) -> str:
    return (
        "# Written by `provision lab up`: the lab hosts' BMC (Redfish over the libvirt driver).\n"
        f"SUSHY_EMULATOR_LISTEN_IP = {listen_ip!r}\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_SSL_CERT = {str(cert)!r}\n"
        f"SUSHY_EMULATOR_SSL_KEY = {str(key)!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
        f"SUSHY_EMULATOR_LIBVIRT_URI = {libvirt_uri!r}\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False\n"
        "SUSHY_EMULATOR_BOOT_LOADER_MAP = {\n"
        f"    'UEFI': {{'x86_64': {str(ovmf_code)!r}}},\n"
        "    'Legacy': {'x86_64': None},\n"
        "}\n"
    )
