"""What the lab is: its network plan and the virtual hosts with the hardware QEMU gives them.

Pure data. The lab inventory (profiles-lab/hosts.yaml) and the `lab-vm` profile describe the same
machines from the controller's side; tests/test_lab_spec.py checks the two agree, so the profile
states what the VMs really present and nothing is faked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from provision.model.errors import BadInput

LAB_ID_RE = re.compile(r"^[a-z0-9]{1,8}$")
MIB = 1024 * 1024
GIB = 1024 * MIB


class Firmware(StrEnum):
    uefi = "uefi"  # OVMF, the NIC's option ROM off: EDK2's own PXE client boots (like a real server)
    bios = "bios"  # SeaBIOS with the iPXE option ROM


@dataclass(frozen=True)
class Dimm:
    locator: str
    manufacturer: str
    serial: str
    part_number: str
    speed_mts: int


@dataclass(frozen=True)
class LabDisk:
    serial: str
    size_bytes: int


@dataclass(frozen=True)
class LabNode:
    name: str  # libvirt domain name == inventory host name
    firmware: Firmware
    uuid: str  # domain UUID == SMBIOS system UUID == the Redfish system id
    mac: str
    ipv4: str  # host part on the lab subnet; dnsmasq reserves it and the kickstart sets it
    vcpus: int
    memory_mib: int
    cpu_model_id: str
    system_manufacturer: str
    system_product: str
    system_serial: str
    dimms: tuple[Dimm, ...]
    boot_disks: tuple[LabDisk, ...]  # SATA, the boot mirror
    nvme: tuple[LabDisk, ...]  # scratch


@dataclass(frozen=True)
class LabNet:
    """Names and addresses of one lab. Interface names stay under Linux's 15 characters."""

    lab_id: str
    subnet: str = "10.77.0"  # /24; .1 is the provisioning server, hosts from .11
    ipv6_prefix: str = "fd77::"

    @property
    def srv_ns(self) -> str:  # controller side: dnsmasq, mirror, BMC, boot server, SSH client
        return f"ipl-{self.lab_id}-srv"

    @property
    def rack_ns(self) -> str:  # the "rack": bridge, libvirtd, the VMs' taps
        return f"ipl-{self.lab_id}-rack"

    @property
    def bridge(self) -> str:
        return f"ipl{self.lab_id}br"

    @property
    def veth_srv(self) -> str:
        return f"ipl{self.lab_id}s"

    @property
    def veth_rack(self) -> str:
        return f"ipl{self.lab_id}r"

    @property
    def server_ip(self) -> str:
        return f"{self.subnet}.1"

    @property
    def server_ip6(self) -> str:
        return f"{self.ipv6_prefix}1"

    @property
    def dhcp_range(self) -> tuple[str, str]:
        return f"{self.subnet}.100", f"{self.subnet}.150"


def check_lab_id(lab_id: str) -> str:
    if not LAB_ID_RE.match(lab_id):
        raise BadInput(f"lab id: expected 1-8 lowercase letters or digits, got {lab_id!r}")
    return lab_id


# The BMC (sushy's libvirt driver) reports the libvirt CPU model name and its own name as the
# manufacturer; the OS sees QEMU's model-id and SMBIOS. Both are set so the two views agree.
CPU_MODEL_ID = "qemu64"
SYSTEM_MANUFACTURER = "Sushy Emulator"
SYSTEM_PRODUCT = "lab-vm"
DIMM_MANUFACTURER = "LabRAM"
DIMM_PART = "LAB-2G-3200"
BOOT_DISK_BYTES = 3 * GIB
NVME_BYTES = 1 * GIB


def _node(n: int, firmware: Firmware) -> LabNode:
    return LabNode(
        name=f"lab-node-{n}",
        firmware=firmware,
        uuid=f"1ab00000-0000-4000-8000-00000000000{n}",
        mac=f"52:54:00:1a:b0:0{n}",
        ipv4=f"1{n}",
        vcpus=1,
        memory_mib=2048,  # 1 GiB left the kernel under the usable-memory floor (95%)
        cpu_model_id=CPU_MODEL_ID,
        system_manufacturer=SYSTEM_MANUFACTURER,
        system_product=SYSTEM_PRODUCT,
        system_serial=f"LAB-SN-000{n}",
        dimms=(Dimm("DIMM 0", DIMM_MANUFACTURER, f"LABDIMM{n}000", DIMM_PART, 3200),),
        boot_disks=(LabDisk(f"LABBOOT{n}A", BOOT_DISK_BYTES), LabDisk(f"LABBOOT{n}B", BOOT_DISK_BYTES)),
        nvme=(LabDisk(f"LABNVME{n}0", NVME_BYTES),),
    )


# lab-node-1: UEFI native PXE (the demo's host); lab-node-2: BIOS + iPXE ROM; lab-node-3: UEFI,
# kept for "boot override disk must not PXE".
NODES: tuple[LabNode, ...] = (_node(1, Firmware.uefi), _node(2, Firmware.bios), _node(3, Firmware.uefi))


def node(name: str, nodes: tuple[LabNode, ...] = NODES) -> LabNode:
    for n in nodes:
        if n.name == name:
            return n
    known = ", ".join(n.name for n in nodes)
    raise BadInput(f"lab host: expected one of {known}, got {name!r}")


def swapped(n: LabNode, part: str, serial: str) -> LabNode:
    """The node after a field engineer replaced one part: `dimm` (the first DIMM) or `nvme` (the first)."""
    if part == "dimm":
        first = replace(n.dimms[0], serial=serial)
        return replace(n, dimms=(first, *n.dimms[1:]))
    if part == "nvme":
        first_nvme = replace(n.nvme[0], serial=serial)
        return replace(n, nvme=(first_nvme, *n.nvme[1:]))
    raise BadInput(f"part: expected dimm or nvme, got {part!r}")
