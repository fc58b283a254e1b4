"""What the steps of one host's run share (the host, its profile, the timeouts, the boot server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.bmc.boot_override import BootMode
from provision.flow.engine import Progress, StepCall
from provision.model.catalog import Catalog
from provision.model.hosts import Host
from provision.model.profile import Profile, Timeouts
from provision.store.lifecycle import HostState, Run
from provision.store.state import StateStore


@dataclass
class HostEnv:
    """Everything the steps of one host's run share."""

    store: StateStore
    host: Host
    profile: Profile
    timeouts: Timeouts
    progress: Progress
    catalog: Catalog  # the one the boot server serves from: render_kickstart pins boot disks in it
    boot_url: str  # what installers reach
    netboot_dir: Path  # where open_run publishes the iPXE URL (with the token) for the DHCP side
    profiles_dir: Path  # golden references live there
    kind: str = "provision"
    plan_name: str = "acceptance"
    boot_mode: BootMode = BootMode.uefi
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """What every group of steps of one run holds: the host's environment and the run, and the two
    things they all do (move the host's state, say what is happening)."""

    env: HostEnv
    run: Run

    @property
    def store(self) -> StateStore:
        return self.env.store

    @property
    def name(self) -> str:
        return self.env.host.name

    def state(self, state: HostState, reason: str) -> None:
        self.store.set_host_state(self.name, state, reason=f"run {self.run.id}: {reason}")

    def note(self, call: StepCall, message: str, data: dict[str, Any] | None = None) -> None:
        self.env.progress.note(self.name, call.step.value, message, data)
