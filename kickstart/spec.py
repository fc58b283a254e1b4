"""What one install needs, already decided: the renderers only lay it out.

Every field is plain data (text, numbers, tuples) so the templates cannot reach into the
controller's models and the specs can be built by hand in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DriverMode(StrEnum):
    keep = "keep"  # stays for the GPU Operator's pre-installed-driver mode
    remove = "remove"  # removed before handoff; the operator brings its own


@dataclass(frozen=True)
class Repo:
    name: str
    url: str


@dataclass(frozen=True)
class NetIface:
    name: str  # the inventory's name (eth0, eth1, ib0), matched on the installer side by MAC
    mac: str
    role: str  # management, data, rdma
    ipv4: str | None = None  # address only; None: DHCP
    netmask: str | None = None
    gateway: str | None = None
    nameservers: tuple[str, ...] = ()
    default_route: bool = False


@dataclass(frozen=True)
class Callback:
    """Where the installer reports, and with what. The token is the run's, sent as a Bearer header."""

    base_url: str  # http://server:port (no trailing slash)
    host: str
    token: str


@dataclass(frozen=True)
class Nccl:
    """NCCL (NVIDIA's CUDA repo, the GpuDriver's) and the site's nccl-tests RPM, for the burn-in's
    in-node all-reduce. The agent runs `binary` from PATH; %post checks it is there."""

    packages: tuple[str, ...]
    tests_package: str
    binary: str = "all_reduce_perf"


@dataclass(frozen=True)
class GpuDriver:
    repo_url: str
    packages: tuple[str, ...]
    mode: DriverMode
    gpu_count: int
    gpu_name: str
    nccl: Nccl | None = None  # the profile's gpu_floors.nccl.install


@dataclass(frozen=True)
class InstallSpec:
    hostname: str
    os_name: str
    os_version: str
    install_url: str  # the BaseOS tree (url line, inst.repo)
    repos: tuple[Repo, ...]  # AppStream and site extras
    interfaces: tuple[NetIface, ...]
    boot_disks: tuple[str, ...]  # "disk/by-id/..." names, Anaconda's stable form
    admin_user: str
    admin_ssh_keys: tuple[str, ...]
    root_password_hash: str | None  # SHA-512 crypt; None: root locked
    timezone: str
    ntp_servers: tuple[str, ...]
    packages: tuple[str, ...]
    tuned_profile: str
    kernel_args: tuple[str, ...]
    callback: Callback
    profile: str
    gpu: GpuDriver | None = None
    efi_size_mib: int = 600
    boot_size_mib: int = 1024
    firewall_services: tuple[str, ...] = ("ssh",)
    root_ssh_keys: tuple[str, ...] = ()  # when the controller logs in as root (key only, never a password)
