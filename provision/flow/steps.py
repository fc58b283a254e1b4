"""The code of each step of one host's run, composed from its three groups: up to the install
(provision.flow.install_steps), the burn-in (burnin_steps), and judging and handing over
(accept_steps). They share one StepContext: the host's environment and the run.

Each step is safe to run again after a partial attempt (the controller may die anywhere); the rules
that make it so are in each group's module. Documents are stored before a step is marked done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provision.flow.accept_steps import AcceptSteps
from provision.flow.bios_steps import BiosSteps
from provision.flow.burnin_steps import BurninSteps
from provision.flow.engine import Progress, StepFn, StepName
from provision.flow.firmware_steps import FirmwareSteps
from provision.flow.hostenv import HostEnv, StepContext
from provision.flow.install_steps import InstallSteps
from provision.model.catalog import Catalog
from provision.model.hosts import Host
from provision.model.profile import Profile, Timeouts
from provision.store.lifecycle import Run
from provision.store.state import StateStore


def build_steps(
    store: StateStore,
    host: Host,
    profile: Profile,
    timeouts: Timeouts,
    progress: Progress,
    run: Run,
    opts: Any,
    catalog: Catalog,
    boot_url: str,
    netboot_dir: Path,
    facts: dict[str, Any],
) -> dict[StepName, StepFn]:
    """The step code of one host's run (the signature launch.StepsBuilder calls)."""
    env = HostEnv(
        store=store,
        host=host,
        profile=profile,
        timeouts=timeouts,
        progress=progress,
        catalog=catalog,
        boot_url=boot_url,
        netboot_dir=netboot_dir,
        profiles_dir=catalog.directory,
        kind=opts.kind,
        plan_name=opts.plan,
        extras=dict(opts.extras),
    )
    ctx = StepContext(env, run)
    install = InstallSteps(ctx)
    install.pin_boot_disks(facts)
    return {
        **install.steps(),
        **FirmwareSteps(ctx).steps(),
        **BiosSteps(ctx).steps(),
        **BurninSteps(ctx).steps(),
        **AcceptSteps(ctx).steps(),
    }
