"""`dcgmi diag` held to the profile's figures instead of DCGM's per-SKU defaults (too lenient for these
cards): the `--parameters` assignments (`<test>.<parameter>=<value>`, or
`<test>.<subtest>.<parameter>=<value>`, ';'-separated; DCGM's highest-priority source) generated from
plan["expect"]["gpus"]. Pure.

  targeted_power.target_power = power_limit_w x dcgm_power_pct (default 95) / 100, in W
  memory_bandwidth.minimum_bandwidth = mem_bandwidth_gbs x mem_floor_pct / 100, in MB/s
  pcie.h2d_d2h_single_pinned.min_pci_generation / min_pci_width = the profile's pcie_gen / pcie_width,
  and the same two for pcie.h2d_d2h_single_unpinned (each subtest holds its own limits)

Where each name was checked (NVIDIA/DCGM on GitHub):
  - nvvs/include/PluginStrings.h: plugin names `targeted_power` (TP_PLUGIN_NAME), `memory_bandwidth`
    (MEMBW_PLUGIN_NAME), `pcie` (PCIE_PLUGIN_NAME); parameters `target_power` (TP_STR_TARGET_POWER),
    `minimum_bandwidth` ("minimum bandwidth in MB / s", MEMBW_STR_MINIMUM_BANDWIDTH), `min_pci_generation`
    / `min_pci_width` (PCIE_STR_MIN_PCI_GEN / _WIDTH, "public sub-test parameters"); subtests
    `h2d_d2h_single_pinned` / `h2d_d2h_single_unpinned` (PCIE_SUBTEST_H2D_D2H_SINGLE_*).
  - testing/python3/tests/test_dcgm_diag.py: `dcgmi diag --run pcie -p
    "pcie.h2d_d2h_single_unpinned.min_pci_width=1;pcie.h2d_d2h_single_pinned.min_pci_width=1"` (the
    subtest form and the ';' separator).
  - testing/gen_validation.sh: the SKU file's `targeted_power: target_power`, `memory_bandwidth:
    minimum_bandwidth` and `pcie: h2d_d2h_single_pinned: min_pci_generation: 3.0` (values as floats).
Still unverified: DCGM 4 ships the memory_bandwidth plugin as a closed binary, and an old open version
declared minimum_bandwidth's range as 1-100,000 MB/s; if the closed one still does, DCGM refuses our
floors (691,200 MB/s for an L40S), dcgmi reports an error and the finding is inconclusive, never a pass.
To check on the first real run (the DCGM JSON output keeps the parameter error).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

from typing import Any, Dict, List

# Both host<->device subtests of the pcie plugin (PCIE_SUBTEST_H2D_D2H_SINGLE_PINNED / _UNPINNED).
PCIE_SUBTESTS = ("h2d_d2h_single_pinned", "h2d_d2h_single_unpinned")


def dcgm_parameters(exp: Dict[str, Any]) -> List[str]:
    """The assignments the expectations allow (a missing figure leaves DCGM's default for it)."""
    out: List[str] = []
    if exp.get("power_limit_w"):
        target = float(exp["power_limit_w"]) * float(exp.get("dcgm_power_pct", 95)) / 100
        out.append(f"targeted_power.target_power={target:.1f}")
    if exp.get("mem_bandwidth_gbs"):
        floor_gbs = float(exp["mem_bandwidth_gbs"]) * float(exp.get("mem_floor_pct", 80)) / 100
        out.append(f"memory_bandwidth.minimum_bandwidth={floor_gbs * 1000:.0f}")
    for sub in PCIE_SUBTESTS:
        if exp.get("pcie_gen"):
            out.append(f"pcie.{sub}.min_pci_generation={float(exp['pcie_gen']):.1f}")
        if exp.get("pcie_width"):
            out.append(f"pcie.{sub}.min_pci_width={float(exp['pcie_width']):.1f}")
    return out


def dcgm_argv(level: int, exp: Dict[str, Any]) -> List[str]:
    params = dcgm_parameters(exp)
    return ["dcgmi", "diag", "-r", str(level)] + (["-p", ";".join(params)] if params else []) + ["-j"]
