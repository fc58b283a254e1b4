"""The steps of one host up to its install: the pre-OS inspection (and, for a reinstall, what changed),
the kickstart, the boot server run, the PXE boot and the wait for the installer, the boot from disk.

Each step is safe to run again after a partial attempt (the controller may die anywhere):
- pxe_boot never power-cycles a host whose installer already called back `started`;
- wait_install only reads callbacks recorded after this run's latest PXE boot;
- start_burnin starts the agent under this run's id, and the agent re-attaches to a run of that
  id instead of starting a second one, so a destructive disk test is never started twice.
Documents (inventories, findings, results, reports) are stored before the step is marked done.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from burnin.hardware import HardwareInventory, inventory_from_dict
from burnin.schema import Verdict, to_dict
from provision.acceptance.inspection import inspect_findings
from provision.acceptance.inventory_diff import diff_inventories, retarget_boot_disks, suites_to_weigh
from provision.bmc.boot_override import BootDevice, BootRequest, set_boot
from provision.bmc.eventlog import take_mark
from provision.bmc.inventory import collect_inventory
from provision.bmc.posture import read_posture
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import connect
from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.flow.hostenv import StepContext
from provision.flow.hostrun import RUN_KINDS
from provision.install.bootserver import CALLBACKS
from provision.install.render import kickstart_for
from provision.install.spec import NO_RUN_TOKEN
from provision.model.errors import ExternalError, NotFound, StateError, VerdictFailed
from provision.model.files import FileRefused, write_private
from provision.model.hosts import DiskId
from provision.model.profile import DriveInterface, DriveRole
from provision.store.lifecycle import EventRow, HostState, Run, RunStatus

# The boot server records the installer's callbacks as events of these kinds.
INSTALL_STARTED = "install.started"
INSTALL_FINISHED = "install.finished"
INSTALL_FAILED = "install.failed"
PREOS_INVENTORY = "inventory-redfish.json"
INSTALL_KINDS = (INSTALL_STARTED, INSTALL_FINISHED, INSTALL_FAILED)
EVENT_LOG_MARK = "event_log_mark"  # the fact the burn-in's event-log read compares with
BELL_WAIT_S = 0.25  # wait_install's longest wait on the callback bell between checks for a cancel


class InstallFailed(ExternalError):
    """The installer called back `failed`; the message carries its log tail."""


class InstallSteps:
    """Up to an installed host: inspect (gate 1), render_kickstart, open_run, pxe_boot, wait_install,
    boot_disk."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def steps(self) -> dict[StepName, StepFn]:
        return {
            StepName.inspect: self.inspect,
            StepName.render_kickstart: self.render_kickstart,
            StepName.open_run: self.open_run,
            StepName.pxe_boot: self.pxe_boot,
            StepName.wait_install: self.wait_install,
            StepName.boot_disk: self.boot_disk,
        }

    def _install_events(self, after_id: int) -> list[EventRow]:
        return [
            e
            for e in self.ctx.store.events(run_id=self.ctx.run.id)
            if e.kind in INSTALL_KINDS and e.id > after_id
        ]

    def _last_event_id(self) -> int:
        rows = self.ctx.store.events(host=self.ctx.name)
        return rows[-1].id if rows else 0

    # -- inspection ----------------------------------------------------------------------------
    def inspect(self, call: StepCall) -> StepResult:
        host = self.ctx.env.host
        if self.ctx.env.kind == "reinstall":
            self.ctx.state(HostState.maintenance, "reinstall: out of the pool until accepted again")
            kubeconfig = self.ctx.env.extras.get("kubeconfig")
            if kubeconfig:
                from provision.handoff import kube  # the Kubernetes client loads only when a cluster is named

                kube.quarantine(kube.connect(Path(kubeconfig)), self.ctx.name)
                self.ctx.note(call, f"node {self.ctx.name} tainted (quarantine) until it is accepted again")
        with connect(host.bmc) as bmc, bmc.resources() as fetch:
            inv = collect_inventory(fetch, host.bmc.system)
            posture = read_posture(fetch, host.bmc.system)
            # The event log's newest entry now (cleared first if the profile says so): what the
            # burn-in adds after it is judged at `collect`. Journaled as a fact of this step, so a
            # resumed run compares with this mark, not with a later one.
            clear = bmc.post_action if self.ctx.env.profile.acceptance.clear_event_log else None
            mark = take_mark(fetch, host.bmc.system, clear=clear)
        findings = inspect_findings(
            self.ctx.env.profile, inv, host, posture
        )  # what `provision inspect` judges
        self.ctx.store.put_document(self.ctx.run.id, PREOS_INVENTORY, to_dict(inv))
        self.ctx.store.put_document(
            self.ctx.run.id, "findings-redfish.json", {"findings": [to_dict(f) for f in findings]}
        )
        failed = [f for f in findings if f.verdict is Verdict.FAIL]
        facts: dict[str, Any] = {"preos_inventory": PREOS_INVENTORY, EVENT_LOG_MARK: mark.to_dict()}
        evidence = [PREOS_INVENTORY, "findings-redfish.json"]
        if self.ctx.env.kind == "reinstall":
            facts.update(self._diff(call, inv))
            evidence.append("changes.json")
        if failed:
            self.ctx.state(HostState.rejected, f"pre-OS findings failed: {len(failed)}")
            shown = "; ".join(
                f"{f.component}: {f.check} expected {f.expected}, got {f.observed}" for f in failed[:5]
            )
            raise VerdictFailed(f"{self.ctx.name}: pre-OS gate: {len(failed)} finding(s) failed: {shown}")
        if self.ctx.env.kind != "reinstall":
            self.ctx.state(HostState.inspected, f"{len(findings)} pre-OS findings, none failed")
        gaps = f", {len(inv.gaps)} gap(s)" if inv.gaps else ""
        return StepResult(
            message=f"{len(findings)} pre-OS findings, none failed{gaps}",
            evidence=tuple(evidence),
            facts=facts,
        )

    def _baseline(self) -> tuple[Run, HardwareInventory, str | None] | None:
        """What a reinstall compares with: the latest earlier run that ended accepted; failing that
        (a host that was never accepted) the latest earlier run that ran to its end. With its pre-OS
        inventory and its verdict."""
        fallback: tuple[Run, HardwareInventory, str | None] | None = None
        for run in reversed(self.ctx.store.list_runs(self.ctx.name)):
            if (
                run.id == self.ctx.run.id
                or run.status is not RunStatus.succeeded
                or run.kind not in RUN_KINDS
            ):
                continue
            verdicts = [
                (r.evidence or {}).get("facts", {}).get("verdict")
                for r in self.ctx.store.steps(run.id)
                if r.step == "validate"
            ]
            try:
                inv = inventory_from_dict(json.loads(self.ctx.store.get_document(run.id, PREOS_INVENTORY)))
            except NotFound:
                continue
            verdict = verdicts[-1] if verdicts else None
            if verdict == "accepted":
                return run, inv, verdict
            fallback = fallback or (run, inv, verdict)
        return fallback

    def _diff(self, call: StepCall, now: HardwareInventory) -> dict[str, Any]:
        base = self._baseline()
        if base is None:
            self.ctx.note(call, "no earlier run to compare with: every part is treated as new")
            self.ctx.store.put_document(
                self.ctx.run.id, "changes.json", {"previous_run": None, "changes": []}
            )
            return {"previous_run": None, "changes": [], "weigh_suites": []}
        run, before, verdict = base
        if verdict != "accepted":
            self.ctx.note(
                call, f"{self.ctx.name} was never accepted: comparing with its last run {run.id} ({verdict})"
            )
        changes = diff_inventories(before, now)
        for c in changes:
            self.ctx.note(call, f"changed: {c.describe()}")
        if not changes:
            self.ctx.note(call, f"no hardware change since run {run.id}")
        weigh = suites_to_weigh(changes, now)
        doc = {
            "previous_run": run.id,
            "previous_verdict": verdict,
            "changes": [c.to_dict() for c in changes],
            "weigh_suites": weigh,
        }
        self.ctx.store.put_document(self.ctx.run.id, "changes.json", doc)
        return {
            "previous_run": run.id,
            "previous_verdict": verdict,
            "changes": [c.describe() for c in changes],
            "weigh_suites": weigh,
        }

    # -- kickstart and the boot server run -----------------------------------------------------
    def _boot_disks(self, call: StepCall) -> tuple[tuple[DiskId, ...], list[str]]:
        host, profile = self.ctx.env.host, self.ctx.env.profile
        raw = self.ctx.store.get_document(
            self.ctx.run.id, str(call.facts.get("preos_inventory", PREOS_INVENTORY))
        )
        inv = inventory_from_dict(json.loads(raw))
        pinned = tuple(host.boot_disks)
        if pinned and self.ctx.env.kind == "reinstall" and call.facts.get("previous_run"):
            base = self._baseline()
            if base is not None:
                return retarget_boot_disks(pinned, diff_inventories(base[1], inv), inv)
        if pinned:
            return pinned, []
        boot = profile.drives(DriveRole.boot)
        if boot is None:
            return (), []
        proto = "sata" if boot.interface is DriveInterface.sata else "nvme"
        found = [d for d in inv.drives if (d.protocol or "").lower() == proto and (d.serial or d.wwn)]
        if len(found) != boot.count:
            return (), []  # resolve_boot_disks says what is missing, with the file and field
        return tuple(DiskId(serial=d.serial, wwn=d.wwn, model=d.model) for d in found), [
            f"boot disks from inspection: {', '.join(d.serial or d.wwn or '?' for d in found)}"
        ]

    def render_kickstart(self, call: StepCall) -> StepResult:
        disks, notes = self._boot_disks(call)
        for n in notes:
            self.ctx.note(call, n)
        host = self.ctx.env.host.model_copy(update={"boot_disks": disks}) if disks else self.ctx.env.host
        # The copy stored with the run carries a placeholder token: the real one is never written.
        text = kickstart_for(self.ctx.env.catalog, host, NO_RUN_TOKEN, self.ctx.env.boot_url)
        self.ctx.env.catalog.hosts[self.ctx.name] = host  # what the boot server renders for this host now
        self.ctx.store.put_document(self.ctx.run.id, "ks.cfg", text.encode())
        pins = [d.model_dump(exclude_none=True) for d in host.boot_disks]
        return StepResult(
            message=f"kickstart rendered ({len(text.splitlines())} lines); boot disks {pins}",
            evidence=("ks.cfg",),
            facts={"boot_disks": pins},
        )

    def _publish_path(self) -> Path:
        return self.ctx.env.netboot_dir / f"{self.ctx.name}.url"

    def pin_boot_disks(self, facts: dict[str, Any]) -> None:
        """Serve the kickstart with the disks render_kickstart chose (a restarted controller's boot
        server starts from hosts.yaml again)."""
        if facts.get("boot_disks"):
            pins = tuple(DiskId(**d) for d in facts["boot_disks"])
            self.ctx.env.catalog.hosts[self.ctx.name] = self.ctx.env.host.model_copy(
                update={"boot_disks": pins}
            )

    def _open_boot_run(self) -> int:
        """A fresh token for this run, published for the DHCP side; earlier tokens are revoked (the
        boot server also revokes one once its install has called back)."""
        t = self.ctx.env.timeouts
        self.ctx.store.revoke_tokens(self.ctx.run.id)
        ttl_s = t.install_start_s + t.install_s + t.ssh_s
        token = self.ctx.store.issue_token(self.ctx.run.id, self.ctx.name, ttl_s)
        url = f"{self.ctx.env.boot_url}/ipxe/{self.ctx.name}?token={token}"
        # dnsmasq's per-host script URL is made from this file; the token lives only here, 0600.
        path = self._publish_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, (url + "\n").encode())
        except (OSError, FileRefused) as exc:
            raise StateError(f"{path}: expected to publish the boot URL, got {exc}") from None
        return ttl_s

    def open_run(self, call: StepCall) -> StepResult:
        ttl_s = self._open_boot_run()
        return StepResult(
            message=f"boot server run open at {self.ctx.env.boot_url} (token valid {ttl_s} s)",
            facts={"boot_url": self.ctx.env.boot_url},
        )

    # -- boot and install ----------------------------------------------------------------------
    def pxe_boot(self, call: StepCall) -> StepResult:
        after = int(call.facts.get("install_events_after", 0))
        if call.after_cut:
            # Callbacks since the cut attempt began: only that attempt's power cycle can explain them.
            cut = [r for r in self.ctx.store.steps(self.ctx.run.id) if r.step == call.step.value][-2:-1]
            seen = [e for e in self._install_events(after) if cut and e.at >= cut[0].started_at]
            if seen:
                # The power cycle of the interrupted attempt worked: the installer is running. A
                # second cycle now would restart an install half-way through.
                return StepResult(
                    message=f"install already under way ({seen[0].kind} at {seen[0].at:%H:%M:%S}); "
                    "not power-cycling again",
                    facts={"install_events_after": after},
                )
        if call.attempt > 1:
            self._open_boot_run()  # the token of the earlier attempt may be spent or revoked
        mark = self._last_event_id()
        self.ctx.state(HostState.provisioning, "one-time PXE boot and power cycle")
        with connect(self.ctx.env.host.bmc) as bmc:
            boot = set_boot(bmc, BootRequest(BootDevice.pxe, mode=self.ctx.env.boot_mode))
            power = set_power(bmc, PowerAction.cycle, self.ctx.env.timeouts.power_s)
        doc = {"boot": boot.to_dict(), "power": power.to_dict()}
        self.ctx.store.put_document(self.ctx.run.id, "pxe_boot.json", doc)
        return StepResult(
            message=f"next boot {boot.target} ({boot.enabled}); power {power.state} after "
            f"{' -> '.join(power.steps) or 'no change'}",
            evidence=("pxe_boot.json",),
            facts={"install_events_after": mark, "pxe_at": time.time()},
        )

    def wait_install(self, call: StepCall) -> StepResult:
        after = int(call.facts.get("install_events_after", 0))
        t = self.ctx.env.timeouts
        bell = CALLBACKS.listen(self.ctx.run.id)
        seen: list[EventRow | None] = [None]
        due = [0.0]  # when the store is read again without a ring

        def latest(every_s: float) -> EventRow | None:
            """The newest callback. The store is read when this controller's boot server rang the
            run's bell (at once), and otherwise every `every_s` (callbacks recorded by another
            controller, or before this wait began); between reads it waits on the bell, a short while
            at a time so that a cancelled run stops at once."""
            now = time.monotonic()
            if not bell.is_set() and now < due[0]:
                bell.wait(min(BELL_WAIT_S, due[0] - now))
            if bell.is_set() or time.monotonic() >= due[0]:
                bell.clear()  # before the read: a ring during the read is read next time
                due[0] = time.monotonic() + every_s
                events = self._install_events(after)
                seen[0] = events[-1] if events else None
            return seen[0]

        def status() -> str:
            e = seen[0]
            return f"{e.kind} at {e.at:%H:%M:%S}" if e else "no callback yet"

        try:
            first = call.waiter.wait_for(
                "the installer's 'started' callback (PXE, iPXE script, kickstart fetch)",
                lambda: latest(min(t.poll_s, 1.0)),
                t.install_start_s,
                interval_s=0,
                status=status,
            )
            if first.kind == INSTALL_STARTED:
                self.ctx.env.progress.note(self.ctx.name, call.step.value, "installer started")

                def ended() -> EventRow | None:
                    e = latest(t.poll_s)
                    return e if e is not None and e.kind != INSTALL_STARTED else None

                first = call.waiter.wait_for(
                    "the installer's 'finished' callback", ended, t.install_s, interval_s=0, status=status
                )
        finally:
            CALLBACKS.forget(self.ctx.run.id)
        if first.kind == INSTALL_FAILED:
            tail = str(first.payload.get("log_tail") or first.payload.get("tail") or "(no log tail sent)")
            raise InstallFailed(
                f"{self.ctx.name}: the installer reported failure; log tail:\n{tail}\n"
                f"fix the cause, then rerun with --restart-from pxe_boot to install again"
            )
        keys = first.payload.get("host_keys") or first.payload.get("ssh_host_keys") or []
        if not keys:
            raise InstallFailed(
                f"{self.ctx.name}: the installer's 'finished' callback carried no SSH host key to pin; "
                "refusing to trust the host's first SSH answer"
            )
        self.ctx.state(HostState.installed, "installer finished")
        self._publish_path().unlink(missing_ok=True)
        return StepResult(message=f"installed; {len(keys)} host key(s) pinned", facts={"host_keys": keys})

    def boot_disk(self, call: StepCall) -> StepResult:
        with connect(self.ctx.env.host.bmc) as bmc:
            boot = set_boot(bmc, BootRequest(BootDevice.disk, mode=self.ctx.env.boot_mode))
        self.ctx.store.put_document(self.ctx.run.id, "boot_disk.json", {"boot": boot.to_dict()})
        return StepResult(message=f"next boot {boot.target} ({boot.enabled})", evidence=("boot_disk.json",))
