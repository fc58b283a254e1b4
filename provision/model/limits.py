"""Fleet admission limits (`limits:` in profiles/site.yaml): what the shared resources of a site
carry at once. Pure model; provision.flow.admission applies it, `provision host` flags override it.

- bmc_requests: steps talking to one BMC address at once. A BMC is a small embedded computer;
  two sessions at once are what most answer reliably. An address that manages several systems
  (a chassis manager, an emulator) is one BMC here.
- installs: hosts between their PXE boot and the installer's `finished` callback at once: what
  the boot server's image bandwidth carries (a 1 GbE mirror serves ~16 installs of ~1 GiB each
  within the installer's timeouts).
- agent_pushes: burn-in agents shipped over SSH at once (the controller's uplink).
- pdu_budget_w: lowers a PDU's continuous budget below what its feed allows (a PDU shared with
  other loads); it never raises it. Without an entry a PDU's budget is the smallest continuous
  rating (80% rule) of the feeds of the hosts on it, as `provision lint` computes it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from provision.model.profile import Frozen, PosInt

PosWatts = Annotated[float, Field(gt=0)]


class Limits(Frozen):
    bmc_requests: PosInt = 2
    installs: PosInt = 16
    agent_pushes: PosInt = 8
    pdu_budget_w: dict[str, PosWatts] = Field(default_factory=dict)
