"""A profile's optional `gpu_floors:` block: what a node class's GPUs must move between themselves and
the host, beyond what one card does alone. Pure.

The agent judges its copy measurements (burnin.gpu_copy) with these, carried to it in
plan["expect"]["gpus"] (provision.agent.gpu_expect); the controller judges the same measurements again
against the profile (provision.acceptance.validation.gpu_links), so a run whose agent skipped them, or
was given another plan, cannot pass.

  pcie_floor_pct: host<->GPU copies (pinned memory, each direction) at least this % of the link's
      theoretical rate at its trained generation and width (Gen5 x16 = 64 GB/s -> 48 GB/s at 75%)
  pcie_spread_pct: each GPU's copy rates within this % of the node median
  p2p: `expected` (every pair reports peer access) or `absent` (none does; copies go through host
      memory and are still verified)
  peer_min_gbs: floor of each peer copy (cuMemcpyPeerAsync), GB/s
  busbw_min_gbs: NCCL all_reduce_perf bus bandwidth floor at the largest message, GB/s (when nccl-tests
      is installed)
  sustain_pct: the power phase's median board power at least this % of NVML's enforced limit (default
      95), also DCGM's targeted_power target (burnin.gpu_power_verdicts, burnin.gpu_dcgm_params)
  nccl: {install: true} has the kickstart install NCCL and nccl-tests for the burn-in (GpuNccl below);
      the all-reduce then must run: a host without all_reduce_perf is a required inconclusive
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from provision.model.grammar import PackageName

Pct = Annotated[float, Field(gt=0, le=100)]


class Frozen(BaseModel):  # profile.Frozen's rules; profile.py imports this module
    model_config = ConfigDict(extra="forbid", frozen=True)


class P2p(StrEnum):
    expected = "expected"
    absent = "absent"


class GpuNccl(Frozen):
    """What the kickstart installs when a profile asks for the in-node all-reduce (`gpu_floors.nccl`).

    `packages`: NCCL from NVIDIA's CUDA repository for RHEL 9 (the site's `nvidia.repo_url`, already a
    repo of every GPU host's kickstart; names per NVIDIA's NCCL installation guide, RHEL/CentOS:
    libnccl, libnccl-devel, libnccl-static), a version pin allowed (`libnccl-2.21.5-1+cuda12.4`).
    `tests_package`: nccl-tests has no upstream RPM; the site builds one (all_reduce_perf in /usr/bin,
    from NVIDIA/nccl-tests with `make`, against the same NCCL) and serves it from one of its
    `extra_repos`. A package, not a build in %post: no CUDA toolkit on every host, the same binary
    on every host of the fleet, and a missing package stops the install instead of a run later.
    """

    install: bool = False
    packages: tuple[PackageName, ...] = ("libnccl", "libnccl-devel")
    tests_package: PackageName = "nccl-tests"

    @field_validator("packages")
    @classmethod
    def _plain_packages(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            _plain(name)
        return v

    @field_validator("tests_package")
    @classmethod
    def _plain_tests(cls, v: str) -> str:
        return _plain(v)


def _plain(name: str) -> str:
    # PackageName admits `@group` and `-excluded` for %packages; here only a package to install makes sense.
    if name[:1] in ("@", "-"):
        raise ValueError(f"expected a package to install (no @group or -exclusion), got {name!r}")
    return name


class GpuFloors(Frozen):
    pcie_floor_pct: Pct = 75.0
    pcie_spread_pct: Pct = 10.0
    p2p: P2p | None = None
    peer_min_gbs: float | None = Field(default=None, gt=0)
    busbw_min_gbs: float | None = Field(default=None, gt=0)
    sustain_pct: float = Field(default=95.0, gt=0)  # no upper bound here: lint says why > 100 cannot pass
    nccl: GpuNccl = GpuNccl()

    def expect(self) -> dict[str, Any]:
        """The keys burnin.gpu_link_verdicts reads from plan["expect"]["gpus"] (unset ones left out)."""
        out: dict[str, Any] = {
            "pcie_floor_pct": self.pcie_floor_pct,
            "pcie_spread_pct": self.pcie_spread_pct,
            "sustain_pct": self.sustain_pct,
            "dcgm_power_pct": self.sustain_pct,
        }
        if self.p2p is not None:
            out["p2p"] = self.p2p.value
        if self.peer_min_gbs is not None:
            out["peer_min_gbs"] = self.peer_min_gbs
        if self.busbw_min_gbs is not None:
            out["busbw_min_gbs"] = self.busbw_min_gbs
        if self.nccl.install:
            out["nccl_installed"] = True  # the kickstart installed nccl-tests: its absence is not optional
        return out


# GT/s per lane by PCIe generation; the same table and rule as the agent's burnin.gpu_copy (a test holds
# them equal): nominal rate x width / 8, 8b/10b below Gen3 (Gen5 x16 -> 64 GB/s, Gen4 x16 -> 32 GB/s).
PCIE_GTS: dict[int, float] = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}


def pcie_link_gbs(gen: int, width: int) -> float | None:
    """A link's theoretical rate per direction in GB/s, or None for a generation not in the table."""
    if gen not in PCIE_GTS or width <= 0:
        return None
    return PCIE_GTS[gen] * width / 8 * (0.8 if gen <= 2 else 1.0)
