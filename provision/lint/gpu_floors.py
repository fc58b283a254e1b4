"""Lint of a profile's GPU floors (`gpu_floors:`, the GPU rows of `acceptance.floors`) against what the
hardware can do: the card's catalog entry (provision.model.gpu_cards) and the link it trains at. A floor
above the hardware's theoretical figure can never pass; a floor that nothing measures never fails.
One line each, naming the field, the figure and the limit. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from provision.lint.finding import Findings
from provision.model.gpu_cards import GPU_CARDS, GpuCard
from provision.model.gpu_floors import P2p, pcie_link_gbs
from provision.model.profile import Profile
from provision.model.yamlfile import Document

_MEMORY = ("per_gpu.*.mem_gbs", "per_gpu.*.mem_copy_gbs")
_HOST_COPIES = ("copies.hosts.*.h2d_gbs", "copies.hosts.*.d2h_gbs")


def check(p: Profile, doc: Document, out: Findings, cards: Mapping[str, GpuCard] = GPU_CARDS) -> None:
    g, floors = p.gpus, p.gpu_floors
    if g is None:
        if floors is not None:
            out.error("gpu_floors.no-gpus", doc, ("gpu_floors",), "gpu_floors needs a gpus block, got none")
        return
    hw = cards.get(g.pci_device_id.lower())
    link = pcie_link_gbs(g.pcie_gen, g.pcie_width)
    _card(p, doc, out, hw)
    for i, f in enumerate(p.acceptance.floors):
        if f.suite.value != "gpu" or f.peak is None:
            continue
        where = ("acceptance", "floors", i, "peak")
        mem = min(g.mem_bandwidth_gbs, hw.mem_bandwidth_gbs) if hw else g.mem_bandwidth_gbs
        if f.measurement in _MEMORY and f.peak > mem:
            out.error(
                "gpu_floors.memory-above-card",
                doc,
                where,
                f"{f.check}: peak {f.peak:g} GB/s is above the card's theoretical {mem:g} GB/s: "
                "it can never pass",
            )
        if f.measurement in _HOST_COPIES and link is not None and f.peak > link:
            out.error(
                "gpu_floors.pcie-above-link",
                doc,
                where,
                f"{f.check}: peak {f.peak:g} GB/s is above the Gen{g.pcie_gen} x{g.pcie_width} link's "
                f"theoretical {link:g} GB/s per direction: it can never pass",
            )
    if floors is None:
        return
    over_pcie = hw is None or not hw.nvlink
    if floors.peer_min_gbs is not None:
        if floors.p2p is not P2p.expected:
            out.warning(
                "gpu_floors.peer-floor-unused",
                doc,
                ("gpu_floors", "peer_min_gbs"),
                f"peer_min_gbs {floors.peer_min_gbs:g} GB/s applies only to peer copies, and p2p is "
                f"{floors.p2p.value if floors.p2p else 'not set'}: it is never applied (set p2p: expected)",
            )
        elif over_pcie and link is not None and floors.peer_min_gbs > link:
            out.error(
                "gpu_floors.peer-above-link",
                doc,
                ("gpu_floors", "peer_min_gbs"),
                f"peer_min_gbs {floors.peer_min_gbs:g} GB/s is above the Gen{g.pcie_gen} x{g.pcie_width} "
                f"link's theoretical {link:g} GB/s, and these cards have no NVLink: it can never pass",
            )
    if floors.p2p is not None and g.count < 2:
        out.warning(
            "gpu_floors.p2p-single-gpu",
            doc,
            ("gpu_floors", "p2p"),
            f"p2p: {floors.p2p.value} with gpus.count {g.count}: there is no pair of GPUs to check",
        )
    elif floors.p2p is P2p.expected and hw is not None and hw.peer_access is False:
        out.error(
            "gpu_floors.p2p-unsupported",
            doc,
            ("gpu_floors", "p2p"),
            f"p2p: expected, but the catalog says {hw.name} ({g.pci_device_id}) gets no peer access: "
            "the peer matrix can never pass (set p2p: absent)",
        )
    elif floors.p2p is P2p.expected and hw is not None and hw.peer_access is None:
        out.info(
            "gpu_floors.p2p-unknown",
            doc,
            ("gpu_floors", "p2p"),
            f"the catalog does not know whether {hw.name} cards get peer access over PCIe: "
            "confirm p2p: expected on the first unit",
        )
    if floors.busbw_min_gbs is not None:
        if g.count < 2:
            out.error(
                "gpu_floors.busbw-single-gpu",
                doc,
                ("gpu_floors", "busbw_min_gbs"),
                f"busbw_min_gbs {floors.busbw_min_gbs:g} GB/s with gpus.count {g.count}: an all-reduce over "
                "one GPU moves nothing between GPUs (nccl-tests reports 0 bus bandwidth): it can never pass",
            )
        elif over_pcie and link is not None and floors.busbw_min_gbs > link:
            out.error(
                "gpu_floors.busbw-above-link",
                doc,
                ("gpu_floors", "busbw_min_gbs"),
                f"busbw_min_gbs {floors.busbw_min_gbs:g} GB/s is above the Gen{g.pcie_gen} x{g.pcie_width} "
                f"link's theoretical {link:g} GB/s, and these cards have no NVLink: it can never pass",
            )
    if floors.sustain_pct > 100:
        out.error(
            "gpu_floors.power-above-limit",
            doc,
            ("gpu_floors", "sustain_pct"),
            f"sustain_pct {floors.sustain_pct:g}%: a board never sustains more than 100% of its enforced "
            "power limit, so the power phase can never pass",
        )


def _card(p: Profile, doc: Document, out: Findings, hw: GpuCard | None) -> None:
    g = p.gpus
    if g is None or hw is None:
        return
    if g.mem_bandwidth_gbs > hw.mem_bandwidth_gbs:
        out.error(
            "gpu_floors.memory-above-card",
            doc,
            ("gpus", "mem_bandwidth_gbs"),
            f"{g.mem_bandwidth_gbs} GB/s is above the catalog's theoretical {hw.mem_bandwidth_gbs:g} GB/s "
            f"for {hw.name} ({g.pci_device_id}): every memory floor made from it is too high",
        )
    if g.pcie_gen > hw.pcie_gen or g.pcie_width > hw.pcie_width:
        out.error(
            "gpu_floors.pcie-above-card",
            doc,
            ("gpus", "pcie_gen"),
            f"Gen{g.pcie_gen} x{g.pcie_width} is above what {hw.name} ({g.pci_device_id}) trains at, "
            f"Gen{hw.pcie_gen} x{hw.pcie_width}: the link checks and copy floors can never pass",
        )
    if g.power_limit_w > hw.max_power_w:
        out.error(
            "gpu_floors.power-above-card",
            doc,
            ("gpus", "power_limit_w"),
            f"{g.power_limit_w} W is above the highest limit {hw.name} can be set to, {hw.max_power_w} W",
        )
