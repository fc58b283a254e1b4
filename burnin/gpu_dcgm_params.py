"""`dcgmi diag` held to the profile's figures instead of DCGM's per-SKU defaults (too lenient for these
cards): the `--parameters` assignments (`<test>.<parameter>=<value>`, DCGM's highest-priority source)
generated from plan["expect"]["gpus"]. Pure.

  targeted_power.target_power = power_limit_w x dcgm_power_pct (default 95) / 100, in W
  memory_bandwidth.minimum_bandwidth = mem_bandwidth_gbs x mem_floor_pct / 100, in MB/s
  pcie.h2d_d2h_single_pinned.min_pci_generation / min_pci_width = the profile's pcie_gen / pcie_width

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

from typing import Any, Dict, List


def dcgm_parameters(exp: Dict[str, Any]) -> List[str]:
    """The assignments the expectations allow (a missing figure leaves DCGM's default for it)."""
    out: List[str] = []
    if exp.get("power_limit_w"):
        target = float(exp["power_limit_w"]) * float(exp.get("dcgm_power_pct", 95)) / 100
        out.append(f"targeted_power.target_power={target:.1f}")
    if exp.get("mem_bandwidth_gbs"):
        floor_gbs = float(exp["mem_bandwidth_gbs"]) * float(exp.get("mem_floor_pct", 80)) / 100
        out.append(f"memory_bandwidth.minimum_bandwidth={floor_gbs * 1000:.0f}")
    if exp.get("pcie_gen"):
        out.append(f"pcie.h2d_d2h_single_pinned.min_pci_generation={float(exp['pcie_gen']):.1f}")
    if exp.get("pcie_width"):
        out.append(f"pcie.h2d_d2h_single_pinned.min_pci_width={float(exp['pcie_width']):.1f}")
    return out


def dcgm_argv(level: int, exp: Dict[str, Any]) -> List[str]:
    params = dcgm_parameters(exp)
    return ["dcgmi", "diag", "-r", str(level)] + (["-p", ";".join(params)] if params else []) + ["-j"]
