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
  busbw_min_gbs: NCCL all_reduce_perf average bus bandwidth floor, GB/s (when nccl-tests is installed)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Pct = Annotated[float, Field(gt=0, le=100)]


class Frozen(BaseModel):  # profile.Frozen's rules; profile.py imports this module
    model_config = ConfigDict(extra="forbid", frozen=True)


class P2p(StrEnum):
    expected = "expected"
    absent = "absent"


class GpuFloors(Frozen):
    pcie_floor_pct: Pct = 75.0
    pcie_spread_pct: Pct = 10.0
    p2p: P2p | None = None
    peer_min_gbs: float | None = Field(default=None, gt=0)
    busbw_min_gbs: float | None = Field(default=None, gt=0)

    def expect(self) -> dict[str, Any]:
        """The keys burnin.gpu_link_verdicts reads from plan["expect"]["gpus"] (unset ones left out)."""
        out: dict[str, Any] = {"pcie_floor_pct": self.pcie_floor_pct, "pcie_spread_pct": self.pcie_spread_pct}
        if self.p2p is not None:
            out["p2p"] = self.p2p.value
        if self.peer_min_gbs is not None:
            out["peer_min_gbs"] = self.peer_min_gbs
        if self.busbw_min_gbs is not None:
            out["busbw_min_gbs"] = self.busbw_min_gbs
        return out
