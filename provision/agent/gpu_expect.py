"""What the GPU burn-in suite expects of a node, derived from its profile: plan["expect"]["gpus"].

Pure. The keys are the ones burnin.gpu_verdicts documents and reads; the plan builder puts this dict
under plan["expect"]["gpus"].
"""

from __future__ import annotations

from typing import Any

from provision.model.profile import Profile


def gpu_expect(profile: Profile) -> dict[str, Any]:
    acc, power = profile.acceptance, profile.power
    expect: dict[str, Any] = {
        "count": profile.gpu_count,
        "temp_margin_c": acc.gpu_temp_margin_c,
        "throughput_spread_pct": acc.gpu_throughput_spread_pct,
        "compute_floor_pct": acc.gpu_compute_floor_pct,
        "mem_floor_pct": acc.gpu_mem_floor_pct,
        "feed_continuous_w": power.continuous_w,
        # While the GPUs burn, budget the rest of the node at its worst: CPUs at TDP plus fans, DIMMs, drives.
        "non_gpu_draw_w": profile.cpu.sockets * profile.cpu.tdp_w + power.other_draw_w,
    }
    g = profile.gpus
    if g is None:
        return expect
    expect.update(
        name=g.name,
        pci_device_id=g.pci_device_id,
        memory_mib=g.memory_mib,
        memory_tolerance_pct=g.memory_tolerance_pct,
        pcie_gen=g.pcie_gen,
        pcie_width=g.pcie_width,
        power_limit_w=g.power_limit_w,
        compute_capability=g.compute_capability,
        ecc_required=g.ecc_required,
        mem_bandwidth_gbs=g.mem_bandwidth_gbs,
        dcgm_diag_level=g.dcgm_diag_level,
    )
    if g.fp32_tflops is not None:
        expect["fp32_tflops"] = g.fp32_tflops
    if profile.gpu_floors is not None:
        expect.update(profile.gpu_floors.expect())
    return expect
