"""libvirt domain XML for one lab node. Pure: text in, text out.

What libvirt has no XML for goes through <qemu:commandline>: the CPU's model-id string, the SMBIOS
DIMM (type 17) entry and the NVMe drives with their serials. `-cpu` given there comes after
libvirt's own, and QEMU keeps the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from provision.lab.spec import Firmware, LabNode

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
EMULATOR = Path("/usr/bin/qemu-system-x86_64")


@dataclass(frozen=True)
class NodePaths:
    boot_disks: tuple[Path, ...]
    nvme: tuple[Path, ...]
    nvram: Path
    serial_log: Path


def node_paths(node: LabNode, disks_dir: Path, logs_dir: Path) -> NodePaths:
    return NodePaths(
        boot_disks=tuple(disks_dir / f"{node.name}-boot{i}.qcow2" for i in range(len(node.boot_disks))),
        nvme=tuple(disks_dir / f"{node.name}-nvme{i}.qcow2" for i in range(len(node.nvme))),
        nvram=disks_dir / f"{node.name}_VARS.fd",
        serial_log=logs_dir / f"{node.name}.serial.log",
    )


def _arg(value: str) -> str:
    return f"    <qemu:arg value={quoteattr(value)}/>"


def _smbios_escape(value: str) -> str:
    # QEMU's option parser: a comma inside a value is written twice
    return value.replace(",", ",,")


def render_domain(node: LabNode, paths: NodePaths, bridge: str) -> str:
    loader, rom = _firmware_xml(node, paths)
    args = _qemu_args(node, paths)
    return (
        "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
        f"  <name>{node.name}</name>\n"
        f"  <uuid>{node.uuid}</uuid>\n"
        f"  <memory unit='MiB'>{node.memory_mib}</memory>\n"
        f"  <vcpu>{node.vcpus}</vcpu>\n"
        "  <sysinfo type='smbios'>\n"
        "    <system>\n"
        f"      <entry name='manufacturer'>{node.system_manufacturer}</entry>\n"
        f"      <entry name='product'>{node.system_product}</entry>\n"
        f"      <entry name='serial'>{node.system_serial}</entry>\n"
        f"      <entry name='uuid'>{node.uuid}</entry>\n"
        "    </system>\n"
        "  </sysinfo>\n"
        "  <os>\n"
        "    <type arch='x86_64' machine='q35'>hvm</type>\n"
        f"{loader}"
        "    <boot dev='hd'/>\n"
        "    <smbios mode='sysinfo'/>\n"
        "  </os>\n"
        "  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>\n"
        "  <features><acpi/><apic/></features>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        f"    <emulator>{EMULATOR}</emulator>\n"
        f"{_disks_xml(node, paths)}"
        "    <interface type='bridge'>\n"
        f"      <source bridge='{bridge}'/>\n"
        f"      <mac address='{node.mac}'/>\n"
        "      <model type='virtio'/>\n"
        f"{rom}"
        "    </interface>\n"
        f"    <serial type='file'><source path='{paths.serial_log}' append='on'/>"
        "<target port='0'/></serial>\n"
        f"    <console type='file'><source path='{paths.serial_log}' append='on'/>"
        "<target type='serial' port='0'/></console>\n"
        "  </devices>\n"
        "  <qemu:commandline>\n"
        f"{chr(10).join(args)}\n"
        "  </qemu:commandline>\n"
        "</domain>\n"
    )


def _firmware_xml(node: LabNode, paths: NodePaths) -> tuple[str, str]:
    """The <os> loader lines and the NIC's <rom> line: OVMF with its own NVRAM for UEFI, none for BIOS."""
    if node.firmware is not Firmware.uefi:
        return "", ""
    loader = (
        f"    <loader readonly='yes' secure='no' type='pflash'>{OVMF_CODE}</loader>\n"
        f"    <nvram template='{OVMF_VARS}'>{paths.nvram}</nvram>\n"
    )
    rom = "      <rom enabled='no'/>\n"  # OVMF's own PXE client, not iPXE from the NIC's ROM
    return loader, rom


def _disks_xml(node: LabNode, paths: NodePaths) -> str:
    """The boot disks on SATA (sda, sdb, ...), each with its serial."""
    disks = []
    for i, (disk, path) in enumerate(zip(node.boot_disks, paths.boot_disks, strict=True)):
        disks.append(
            "    <disk type='file' device='disk'>\n"
            "      <driver name='qemu' type='qcow2' discard='unmap' detect_zeroes='unmap'/>\n"
            f"      <source file='{path}'/>\n"
            f"      <target dev='sd{chr(ord('a') + i)}' bus='sata'/>\n"
            f"      <serial>{disk.serial}</serial>\n"
            "    </disk>\n"
        )
    return "".join(disks)


def _qemu_args(node: LabNode, paths: NodePaths) -> list[str]:
    """The <qemu:arg> lines for what libvirt has no XML for: CPU model id, DIMMs, NVMe drives."""
    args = [_arg("-cpu"), _arg(f"qemu64,model-id={_smbios_escape(node.cpu_model_id)}")]
    if node.firmware is Firmware.uefi:
        # No PXE over IPv6: after iPXE hands back ("boot local"), OVMF would wait minutes on it
        # before it tries the disks. Real servers are commonly set up the same way.
        args += [_arg("-fw_cfg"), _arg("name=opt/org.tianocore/IPv6PXESupport,string=n")]
    for dimm in node.dimms:
        fields = (
            f"type=17,loc_pfx={_smbios_escape(dimm.locator)},manufacturer={_smbios_escape(dimm.manufacturer)},"
            f"serial={_smbios_escape(dimm.serial)},part={_smbios_escape(dimm.part_number)},"
            f"speed={dimm.speed_mts}"
        )
        args += [_arg("-smbios"), _arg(fields)]
    for i, (drive, path) in enumerate(zip(node.nvme, paths.nvme, strict=True)):
        args += [
            _arg("-drive"),
            _arg(f"if=none,id=labnvme{i},file={path},format=qcow2,discard=unmap"),
            _arg("-device"),
            _arg(f"nvme,drive=labnvme{i},serial={drive.serial},bus=pcie.0,addr={0x18 + i:#x}"),
        ]
    return args
