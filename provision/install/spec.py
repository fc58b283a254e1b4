"""Decide what one host's install is, from its profile, inventory entry and the site (pure).

The result is a `kickstart` spec: the renderers there only lay it out. The choices made here:
which two disks hold the OS (by stable id), which interface carries the default route, which
packages the burn-in needs, which kernel arguments and which GPU driver.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from burnin.hardware import Drive, normalize_wwn
from kickstart.netboot import IpxeSpec
from kickstart.spec import Callback, DriverMode, GpuDriver, InstallSpec, Nccl, NetIface, Repo
from provision.model.errors import BadInput
from provision.model.grammar import shown
from provision.model.hosts import DiskId, Host, Interface
from provision.model.profile import DriveInterface, DriveRole, NicRole, Profile
from provision.model.site import Site

# What the burn-in agent and its probes run on the installed host.
BURNIN_PACKAGES = (
    "stress-ng",
    "fio",
    "memtester",
    "nvme-cli",
    "smartmontools",
    "dmidecode",
    "gcc",
    "python3",
    "numactl",
    "pciutils",
    "ethtool",
    "mdadm",
    "efibootmgr",
    "chrony",
    "tuned",
    "rasdaemon",
    "curl",
    "tar",
)
# nouveau must never bind a GPU the NVIDIA driver is meant to drive, not even in the initramfs.
NOUVEAU_OFF = ("rd.driver.blacklist=nouveau", "nouveau.modeset=0")
NO_RUN_TOKEN = "NO-RUN-TOKEN"  # rendered outside a run; the boot server never accepts it

_HEX = re.compile(r"^[0-9a-f]{16}([0-9a-f]{16})?$")


def _wwn(raw: str) -> str | None:
    """The WWN udev names a SCSI/SATA disk by (16 or 32 hex digits), or None."""
    value = normalize_wwn(raw)
    return value if value and _HEX.match(value) else None


def by_id_name(disk: DiskId, interface: DriveInterface | None) -> str:
    """udev's /dev/disk/by-id name for a disk: wwn-0x<WWN>, else <bus>-<model>_<serial>."""
    if disk.wwn:
        wwn = _wwn(disk.wwn)
        if wwn is None:
            raise ValueError(f"expected a WWN of 16 or 32 hex digits (0x... or naa....), got {disk.wwn!r}")
        return f"disk/by-id/wwn-0x{wwn}"
    if disk.serial and disk.model and interface is not None:
        bus = "ata" if interface is DriveInterface.sata else "nvme"
        model = re.sub(r"\s+", "_", disk.model.strip())
        name = f"{bus}-{model}_{disk.serial.strip()}"
        # fullmatch: `$` lets a trailing newline through; udev's by-id names are short.
        if len(name) > 128 or not re.fullmatch(r"[A-Za-z0-9._:+-]+", name):
            raise ValueError(
                f"expected a model and serial udev can name (at most 128 characters), got {shown(name)}"
            )
        return f"disk/by-id/{name}"
    if disk.serial and disk.model:
        raise ValueError("expected a wwn: the profile has no boot drive class to say the bus (sata or nvme)")
    raise ValueError(f"expected a wwn, or a model and a serial, got {disk.model_dump(exclude_none=True)}")


def _same(a: DiskId, b: DiskId) -> bool:
    return bool(
        (a.wwn and b.wwn and normalize_wwn(a.wwn) == normalize_wwn(b.wwn))
        or (a.serial and a.serial == b.serial)
    )


def boot_disks_from_inventory(profile: Profile, host: str, drives: Sequence[Drive]) -> tuple[DiskId, ...]:
    """The boot pair as an inspection saw it: the profile's bus and exact capacity, with an identity.

    Nothing is guessed: anything but exactly the profile's count of matching drives is an error
    that lists what was found. A profile without a boot pair yields none (the inventory must say).
    """
    boot = profile.drives(DriveRole.boot)
    if boot is None:
        return ()
    bus = boot.interface.value
    found = [
        d
        for d in drives
        if (d.protocol or "").lower() == bus
        and d.capacity_bytes == boot.capacity_bytes
        and (d.wwn or d.serial)
    ]
    if len(found) != boot.count:
        seen = (
            ", ".join(f"{d.name} ({d.protocol}, {d.capacity_bytes} B, wwn {d.wwn})" for d in drives) or "none"
        )
        raise BadInput(
            f"inspection of {host}: expected {boot.count} {bus} drives of {boot.capacity_bytes} bytes "
            f"with a wwn or serial for the boot mirror, got {len(found)} among: {seen}"
        )
    return tuple(DiskId(serial=d.serial, wwn=d.wwn, model=d.model) for d in found)


def resolve_boot_disks(
    profile: Profile, host: Host, inspected: Sequence[DiskId] = (), where: str = "hosts.yaml"
) -> tuple[str, ...]:
    """The two mirror disks as by-id names: the inventory's `boot_disks`, else the inspected ones.

    A profile without a boot drive pair (circle-6-heresy in the seed has only NVMe scratch) gets
    no guess: the inventory must name the OS disks, so nobody's scratch drive is taken by default.
    """
    field = f"{where}: hosts[{host.name}].boot_disks"
    boot = profile.drives(DriveRole.boot)
    disks = tuple(host.boot_disks) or tuple(inspected)
    if not disks:
        if boot is None:
            raise BadInput(
                f"{field}: profile {profile.name} declares no boot drive pair, so the OS disks must be "
                "named here (two, by wwn or model and serial), got none"
            )
        raise BadInput(
            f"{field}: expected the {boot.count} {boot.interface} boot disks by wwn or serial "
            f"(listed here or read by `provision inspect {host.name}`), got none"
        )
    if len(disks) != 2:
        raise BadInput(f"{field}: expected 2 disks for the RAID1 mirror, got {len(disks)}")
    for disk in disks:
        for scratch in host.scratch_disks:
            if _same(disk, scratch):
                raise BadInput(
                    f"{field}: expected disks apart from scratch_disks, got "
                    f"{disk.model_dump(exclude_none=True)} in both"
                )
    if _same(disks[0], disks[1]):
        raise BadInput(f"{field}: expected two different disks, got the same one twice")
    names: list[str] = []
    for i, disk in enumerate(disks):
        try:
            names.append(by_id_name(disk, boot.interface if boot else None))
        except ValueError as exc:
            raise BadInput(f"{field}[{i}]: {exc}") from None
    return tuple(names)


def _iface(profile: Profile, nic: Interface, default_route: bool) -> NetIface:
    roles = {n.name: n.role for n in profile.network}
    role = roles.get(nic.name)
    ipv4 = netmask = None
    if nic.address:
        net = ipaddress.IPv4Interface(nic.address)
        ipv4, netmask = str(net.ip), str(net.netmask)
    return NetIface(
        name=nic.name,
        mac=nic.mac,
        role=str(role) if role else "unlisted",
        ipv4=ipv4,
        netmask=netmask,
        gateway=nic.gateway,
        nameservers=nic.nameservers,
        default_route=default_route,
    )


def _interfaces(profile: Profile, host: Host) -> tuple[NetIface, ...]:
    roles = {n.name: n.role for n in profile.network}
    # The default route goes out the management network: the one the controller reaches.
    mgmt = next((i for i in host.interfaces if roles.get(i.name) is NicRole.management), None)
    route_via = mgmt or next((i for i in host.interfaces if i.mac == host.boot_mac), None)
    return tuple(_iface(profile, nic, nic is route_via) for nic in host.interfaces)


def kernel_args(profile: Profile, site: Site) -> tuple[str, ...]:
    args = list(profile.platform.os.kernel_args)
    if profile.gpus:
        args += [a for a in NOUVEAU_OFF if a not in args]
    if site.console:
        args.append(f"console={site.console}")
    return tuple(args)


def build_install_spec(
    profile: Profile,
    host: Host,
    site: Site,
    boot_disks: tuple[str, ...],
    token: str,
    callback_base_url: str,
) -> InstallSpec:
    gpu = None
    if profile.gpus:
        nccl = profile.gpu_floors.nccl if profile.gpu_floors else None
        gpu = GpuDriver(
            repo_url=site.nvidia.repo_url,
            packages=site.nvidia.packages,
            mode=DriverMode(profile.gpus.driver_mode.value),
            gpu_count=profile.gpus.count,
            gpu_name=profile.gpus.name,
            nccl=Nccl(nccl.packages, nccl.tests_package) if nccl and nccl.install else None,
        )
    repos = (Repo("AppStream", site.appstream_url), *(Repo(r.name, r.url) for r in site.extra_repos))
    packages = tuple(dict.fromkeys((*BURNIN_PACKAGES, *site.packages)))
    return InstallSpec(
        hostname=host.name,
        os_name=profile.platform.os.name,
        os_version=profile.platform.os.version,
        install_url=site.baseos_url,
        repos=repos,
        interfaces=_interfaces(profile, host),
        boot_disks=boot_disks,
        admin_user=site.admin.name,
        admin_ssh_keys=site.admin.ssh_keys,
        root_password_hash=site.root_password_hash,
        timezone=site.timezone,
        ntp_servers=site.ntp_servers,
        packages=packages,
        tuned_profile=profile.platform.os.tuned_profile,
        kernel_args=kernel_args(profile, site),
        callback=Callback(base_url=callback_base_url.rstrip("/"), host=host.name, token=token),
        profile=profile.name,
        gpu=gpu,
        # The controller logs in as host.ssh_user: root gets the same keys (prohibit-password).
        root_ssh_keys=site.admin.ssh_keys if host.ssh_user == "root" else (),
    )


def installer_ip_arg(host: Host) -> str:
    """dracut's ip= for the boot interface: static from the inventory, else DHCP."""
    nic = next((i for i in host.interfaces if i.mac == host.boot_mac), None)
    if nic is None or nic.address is None:
        return "dhcp"
    net = ipaddress.IPv4Interface(nic.address)
    # ip=<client>::<gateway>:<netmask>:<hostname>::none -- no device: dracut uses BOOTIF's.
    return f"{net.ip}::{nic.gateway or ''}:{net.netmask}:{host.name}::none"


def build_ipxe_spec(profile: Profile, host: Host, site: Site, server_url: str, token: str) -> IpxeSpec:
    base = server_url.rstrip("/")
    extra = [f"console={site.console}"] if site.console else []
    boot_nic = next((i for i in host.interfaces if i.mac == host.boot_mac), None)
    if boot_nic is not None and boot_nic.address:
        extra += [f"nameserver={ns}" for ns in boot_nic.nameservers]
    return IpxeSpec(
        host=host.name,
        kernel_url=f"{base}/images/vmlinuz",
        initrd_url=f"{base}/images/initrd.img",
        ks_url=f"{base}/ks/{host.name}?token={token}",
        repo_url=site.baseos_url,
        ip_arg=installer_ip_arg(host),
        extra_args=(*extra, *profile.platform.os.kernel_args),
    )
