"""The code of each workflow step for one host: calls into the Redfish, kickstart/boot server,
burn-in (SSH), validation, report and handoff modules, and records what it learnt.

Each step is safe to run again after a partial attempt (the controller may die anywhere):
- pxe_boot never power-cycles a host whose installer already called back `started`;
- wait_install only reads callbacks recorded after this run's latest PXE boot;
- start_burnin starts the agent under this run's id, and the agent re-attaches to a run of that
  id instead of starting a second one, so a destructive disk test is never started twice.
Documents (inventories, findings, results, reports) are stored before the step is marked done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from provision.boot_override import BootDevice, BootMode, BootRequest, set_boot
from provision.errors import ExternalError
from provision.hosts import Host
from provision.lifecycle import EventRow, HostState, Run
from provision.power import PowerAction, set_power
from provision.profile import Profile, Timeouts
from provision.redfish import connect
from provision.state import StateStore
from provision.workflow import Progress, StepCall, StepFn, StepName, StepResult

# The boot server records the installer's callbacks as events of these kinds.
INSTALL_STARTED = "install_started"
INSTALL_FINISHED = "install_finished"
INSTALL_FAILED = "install_failed"
INSTALL_KINDS = (INSTALL_STARTED, INSTALL_FINISHED, INSTALL_FAILED)


class InstallFailed(ExternalError):
    """The installer called back `failed`; the message carries its log tail."""


@dataclass
class HostEnv:
    """Everything the steps of one host's run share."""

    store: StateStore
    host: Host
    profile: Profile
    timeouts: Timeouts
    progress: Progress
    kind: str = "provision"
    plan_name: str = "acceptance"
    boot_mode: BootMode = BootMode.uefi
    extras: dict[str, Any] = field(default_factory=dict)


class HostSteps:
    def __init__(self, env: HostEnv, run: Run) -> None:
        self.env = env
        self.run = run

    @property
    def store(self) -> StateStore:
        return self.env.store

    @property
    def name(self) -> str:
        return self.env.host.name

    def _state(self, state: HostState, reason: str) -> None:
        self.store.set_host_state(self.name, state, reason=f"run {self.run.id}: {reason}")

    def _install_events(self, after_id: int) -> list[EventRow]:
        return [
            e for e in self.store.events(run_id=self.run.id) if e.kind in INSTALL_KINDS and e.id > after_id
        ]

    def _last_event_id(self) -> int:
        rows = self.store.events(host=self.name)
        return rows[-1].id if rows else 0

    # -- boot and install ----------------------------------------------------------------------
    def pxe_boot(self, call: StepCall) -> StepResult:
        after = int(call.facts.get("install_events_after", 0))
        if call.attempt > 1:
            seen = self._install_events(after)
            if seen:
                # The power cycle of the interrupted attempt worked: the installer is running. A
                # second cycle now would restart an install half-way through.
                return StepResult(
                    message=f"install already under way ({seen[0].kind} at {seen[0].at:%H:%M:%S}); "
                    "not power-cycling again",
                    facts={"install_events_after": after},
                )
        mark = self._last_event_id()
        self._state(HostState.provisioning, "one-time PXE boot and power cycle")
        with connect(self.env.host.bmc) as bmc:
            boot = set_boot(bmc, BootRequest(BootDevice.pxe, mode=self.env.boot_mode))
            power = set_power(bmc, PowerAction.cycle, self.env.timeouts.power_s)
        doc = {"boot": boot.to_dict(), "power": power.to_dict()}
        self.store.put_document(self.run.id, "pxe_boot.json", doc)
        return StepResult(
            message=f"next boot {boot.target} ({boot.enabled}); power {power.state} after "
            f"{' -> '.join(power.steps) or 'no change'}",
            evidence=("pxe_boot.json",),
            facts={"install_events_after": mark, "pxe_at": time.time()},
        )

    def wait_install(self, call: StepCall) -> StepResult:
        after = int(call.facts.get("install_events_after", 0))
        t = self.env.timeouts

        def latest() -> EventRow | None:
            seen = self._install_events(after)
            return seen[-1] if seen else None

        def status() -> str:
            e = latest()
            return f"{e.kind} at {e.at:%H:%M:%S}" if e else "no callback yet"

        first = call.waiter.wait_for(
            "the installer's 'started' callback (PXE, iPXE script, kickstart fetch)",
            latest,
            t.install_start_s,
            interval_s=min(t.poll_s, 1.0),
            status=status,
        )
        if first.kind == INSTALL_STARTED:
            self.env.progress.note(self.name, call.step.value, "installer started")

            def ended() -> EventRow | None:
                e = latest()
                return e if e is not None and e.kind != INSTALL_STARTED else None

            first = call.waiter.wait_for(
                "the installer's 'finished' callback", ended, t.install_s, interval_s=t.poll_s, status=status
            )
        if first.kind == INSTALL_FAILED:
            tail = str(first.payload.get("log_tail") or first.payload.get("tail") or "(no log tail sent)")
            raise InstallFailed(
                f"{self.name}: the installer reported failure; log tail:\n{tail}\n"
                f"fix the cause, then rerun with --restart-from pxe_boot to install again"
            )
        keys = first.payload.get("host_keys") or first.payload.get("ssh_host_keys") or []
        if not keys:
            raise InstallFailed(
                f"{self.name}: the installer's 'finished' callback carried no SSH host key to pin; "
                "refusing to trust the host's first SSH answer"
            )
        self._state(HostState.installed, "installer finished")
        return StepResult(message=f"installed; {len(keys)} host key(s) pinned", facts={"host_keys": keys})

    def boot_disk(self, call: StepCall) -> StepResult:
        with connect(self.env.host.bmc) as bmc:
            boot = set_boot(bmc, BootRequest(BootDevice.disk, mode=self.env.boot_mode))
        self.store.put_document(self.run.id, "boot_disk.json", {"boot": boot.to_dict()})
        return StepResult(message=f"next boot {boot.target} ({boot.enabled})", evidence=("boot_disk.json",))

    def steps(self) -> dict[StepName, StepFn]:
        return {
            StepName.pxe_boot: self.pxe_boot,
            StepName.wait_install: self.wait_install,
            StepName.boot_disk: self.boot_disk,
        }


def build_steps(
    store: StateStore,
    host: Host,
    profile: Profile,
    timeouts: Timeouts,
    progress: Progress,
    run: Run,
    opts: Any,
) -> dict[StepName, StepFn]:
    env = HostEnv(
        store=store,
        host=host,
        profile=profile,
        timeouts=timeouts,
        progress=progress,
        kind=opts.kind,
        plan_name=opts.plan,
        extras=dict(opts.extras),
    )
    return HostSteps(env, run).steps()
