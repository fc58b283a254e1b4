"""What the GPU cards the profiles name can do at most, by PCI device id: the hardware catalog that
`provision lint` holds a profile's GPU figures and floors against (provision.lint.gpu_floors). Pure data.

Figures from reference/hardware.md section 2 (datasheets [R] and captures [V]); `peer_access` None means
the catalog does not know whether the driver grants peer access between two of these cards over PCIe
(no capture yet): lint then only says so where a profile expects it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuCard:
    name: str
    mem_bandwidth_gbs: float  # theoretical: data rate x bus width / 8
    pcie_gen: int  # the card's own maximum link
    pcie_width: int
    max_power_w: int  # the highest board power limit it can be set to
    nvlink: bool  # peer traffic can bypass PCIe
    peer_access: bool | None  # cuDeviceCanAccessPeer between two of them over PCIe; None: not known


GPU_CARDS: dict[str, GpuCard] = {
    "0x2bb5": GpuCard("RTX PRO 6000 Blackwell Server Edition", 1597, 5, 16, 600, False, None),
    "0x2bb4": GpuCard("RTX PRO 6000 Blackwell Max-Q Workstation Edition", 1792, 5, 16, 300, False, None),
    "0x2bb1": GpuCard("RTX PRO 6000 Blackwell Workstation Edition", 1792, 5, 16, 600, False, None),
    "0x26b9": GpuCard("L40S", 864, 4, 16, 350, False, None),
}


def card(pci_device_id: str) -> GpuCard | None:
    return GPU_CARDS.get(pci_device_id.lower())
