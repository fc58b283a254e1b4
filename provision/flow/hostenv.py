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


class StepsBase:
    """The run's shared state; the step mixins read it."""

    def __init__(self, env: HostEnv, run: Run) -> None:
        self.env = env
        self.run = run
        self.store: StateStore = env.store
        self.name: str = env.host.name

    def _state(self, state: HostState, reason: str) -> None:
        self.store.set_host_state(self.name, state, reason=f"run {self.run.id}: {reason}")

    def _note(self, call: StepCall, message: str, data: dict[str, Any] | None = None) -> None:
        self.env.progress.note(self.name, call.step.value, message, data)
