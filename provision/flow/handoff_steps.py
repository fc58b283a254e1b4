"""The steps of `provision handoff` (and of `provision host`'s handoff step, with a kubeconfig): the
accepted host joins its cluster by the profile's `handoff.join`, then gets its labels and taints.

Journaled in a run of kind `handoff` of their own (the install run's token never opens the RHCOS
routes, nor this run's the kickstart), so a controller that dies anywhere resumes here:

- rhcos_boot: one-time PXE into the RHCOS live installer (destructive: completed by rhcos_install).
  Never when the Node is already Ready (a host that joined is never reinstalled), and never a second
  power cycle once the installer fetched its Ignition config after a cut attempt;
- rhcos_install: wait for the Ignition fetch, then RHCOS's first-boot callback (its SSH host keys);
- metal3_register: the BMC Secret and the BareMetalHost; follow its provisioning.state;
- join_node: approve the kubelet's CSRs by the rule (provision.handoff.join) and wait for the Node;
- label_node: labels, pool, taints; Ready with the profile's GPU capacity; then the quarantine goes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from provision.bmc.boot_override import BootDevice, BootRequest, set_boot
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import connect as bmc_connect
from provision.flow.engine import (
    Cancel,
    Engine,
    FlowInterrupted,
    StepCall,
    StepFn,
    StepName,
    StepResult,
    StepSpec,
    Summary,
    facts_of,
    plan,
    repeats_destructive,
)
from provision.flow.hostenv import HostEnv, StepContext
from provision.flow.hostrun import journal_records
from provision.handoff import kube
from provision.handoff.join import NodeIdentity, await_node, node_state
from provision.handoff.manifests import QUARANTINE_TAINT
from provision.install.rhcos import rhcos_plan
from provision.install.rhcos_routes import HANDOFF_RUN_KIND, IGNITION_SERVED, RHCOS_INSTALLED
from provision.install.spec import NO_RUN_TOKEN
from provision.model.errors import BadInput, ExternalError, ProvisionError, StateError, VerdictFailed
from provision.model.files import FileRefused, write_private
from provision.model.handoff import JoinMode
from provision.store.lifecycle import EventRow, HostState, Run, RunStatus

HANDOFF_STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        StepName.rhcos_boot,
        "one-time PXE boot into the RHCOS live installer (join: rhcos)",
        destructive=True,
        completed_by=StepName.rhcos_install,
    ),
    StepSpec(StepName.rhcos_install, "wait for the Ignition fetch and RHCOS's first-boot callback"),
    StepSpec(StepName.metal3_register, "create the BMC Secret and BareMetalHost, follow it (join: metal3)"),
    StepSpec(StepName.join_node, "approve the kubelet's CSRs by the rule and wait for the Node"),
    StepSpec(StepName.label_node, "labels, pool, taints; Ready with its GPUs; drop the quarantine"),
)
RHCOS_EVENTS = (IGNITION_SERVED, RHCOS_INSTALLED)
STARTED_EVENT = "handoff_started"


class HandoffFailed(ProvisionError):
    """A handoff step failed; the exit code is that of the error that stopped it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def node_doc(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Node")


def quarantined(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifests with the quarantine taint kept on the Node (a node that has just joined)."""
    out = copy.deepcopy(docs)
    q = QUARANTINE_TAINT
    taint = {"key": q.key, "value": q.value, "effect": q.effect.value}
    node = node_doc(out)
    node["spec"]["taints"] = [t for t in node["spec"]["taints"] if t["key"] != q.key] + [taint]
    return out


class HandoffSteps:
    def __init__(self, ctx: StepContext, api: Any, docs: list[dict[str, Any]], cancel: Cancel) -> None:
        self.ctx = ctx
        self.api = api
        self.docs = docs
        self.cancel = cancel

    @property
    def join(self) -> JoinMode:
        return self.ctx.env.profile.handoff.join

    def steps(self) -> dict[StepName, StepFn]:
        return {
            StepName.rhcos_boot: self.rhcos_boot,
            StepName.rhcos_install: self.rhcos_install,
            StepName.metal3_register: self.metal3_register,
            StepName.join_node: self.join_node,
            StepName.label_node: self.label_node,
        }

    def _events(self, after_id: int) -> list[EventRow]:
        rows = self.ctx.store.events(run_id=self.ctx.run.id)
        return [e for e in rows if e.kind in RHCOS_EVENTS and e.id > after_id]

    def _publish(self) -> None:
        """A fresh token of the handoff run; the RHCOS script's URL published for the DHCP side."""
        t = self.ctx.env.timeouts
        self.ctx.store.revoke_tokens(self.ctx.run.id)
        token = self.ctx.store.issue_token(
            self.ctx.run.id, self.ctx.name, t.install_start_s + t.install_s + t.ssh_s
        )
        path = self.ctx.env.netboot_dir / f"{self.ctx.name}.url"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, f"{self.ctx.env.boot_url}/rhcos/{self.ctx.name}?token={token}\n".encode())
        except (OSError, FileRefused) as exc:
            raise StateError(f"{path}: expected to publish the RHCOS boot URL, got {exc}") from None

    def rhcos_boot(self, call: StepCall) -> StepResult:
        if self.join is not JoinMode.rhcos:
            return StepResult(message=f"join: {self.join}", skipped=True, facts={"rhcos": False})
        ready = node_state(self.api, self.ctx.name)[1]
        if ready:
            return StepResult(
                message=f"node {self.ctx.name} is already Ready: not reinstalling it",
                skipped=True,
                facts={"rhcos": False},
            )
        # Rendered first with a placeholder token: bad input stops here, before any power cycle.
        rendered = rhcos_plan(
            self.ctx.env.catalog,
            self.ctx.env.catalog.hosts[self.ctx.name],
            NO_RUN_TOKEN,
            self.ctx.env.boot_url,
        )
        self.ctx.store.put_document(self.ctx.run.id, "rhcos.ipxe", rendered.ipxe.encode())
        self.ctx.store.put_document(self.ctx.run.id, "ignition.json", rendered.ignition)
        after = int(call.facts.get("rhcos_events_after", 0))
        if call.after_cut:
            cut = [r for r in self.ctx.store.steps(self.ctx.run.id) if r.step == call.step.value][-2:-1]
            seen = [e for e in self._events(after) if cut and e.at >= cut[0].started_at]
            if seen:
                return StepResult(
                    message=f"RHCOS install already under way ({seen[0].kind}); not power-cycling again",
                    facts={"rhcos": True, "rhcos_events_after": after},
                )
        self._publish()
        rows = self.ctx.store.events(host=self.ctx.name)
        mark = rows[-1].id if rows else 0
        with bmc_connect(self.ctx.env.host.bmc) as bmc:
            boot = set_boot(bmc, BootRequest(BootDevice.pxe, mode=self.ctx.env.boot_mode))
            power = set_power(bmc, PowerAction.cycle, self.ctx.env.timeouts.power_s)
        self.ctx.store.put_document(
            self.ctx.run.id, "rhcos_boot.json", {"boot": boot.to_dict(), "power": power.to_dict()}
        )
        return StepResult(
            message=f"RHCOS live installer on {rendered.install_dev}; next boot {boot.target}; "
            f"power {power.state}",
            evidence=("rhcos.ipxe", "ignition.json", "rhcos_boot.json"),
            facts={"rhcos": True, "rhcos_events_after": mark, "rhcos_pool": rendered.pool},
        )

    def rhcos_install(self, call: StepCall) -> StepResult:
        if not call.facts.get("rhcos"):
            return StepResult(message="no RHCOS install in this handoff", skipped=True)
        after = int(call.facts.get("rhcos_events_after", 0))
        t = self.ctx.env.timeouts

        def seen(kind: str) -> EventRow | None:
            return next((e for e in self._events(after) if e.kind == kind), None)

        call.waiter.wait_for(
            "the RHCOS live installer to fetch its Ignition config",
            lambda: seen(IGNITION_SERVED) or seen(RHCOS_INSTALLED),
            t.install_start_s,
            interval_s=min(t.poll_s, 1.0),
        )
        done = call.waiter.wait_for(
            "RHCOS's first-boot 'installed' callback",
            lambda: seen(RHCOS_INSTALLED),
            t.install_s,
            interval_s=min(t.poll_s, 1.0),
        )
        (self.ctx.env.netboot_dir / f"{self.ctx.name}.url").unlink(missing_ok=True)
        keys = done.payload.get("host_keys") or []
        return StepResult(
            message=f"RHCOS installed; {len(keys)} host key(s)", facts={"rhcos_host_keys": keys}
        )

    def metal3_register(self, call: StepCall) -> StepResult:
        if self.join is not JoinMode.metal3:
            return StepResult(message=f"join: {self.join}", skipped=True)
        from provision.bmc.credentials import read_credentials
        from provision.handoff import metal3

        ready = node_state(self.api, self.ctx.name)[1]
        if ready:
            return StepResult(message=f"node {self.ctx.name} is already Ready", skipped=True)
        host = self.ctx.env.catalog.hosts[self.ctx.name]  # with the boot disks its install used
        objects = metal3.metal3_objects(self.ctx.env.profile, host, read_credentials(host.bmc.credentials))
        applied = metal3.create_metal3(self.api, objects)
        t = self.ctx.env.timeouts
        state = metal3.follow_bmh(
            self.api, self.ctx.name, t.install_s, self._note(call), self.cancel, t.poll_s
        )
        if state not in metal3.DONE:
            raise ExternalError(f"{self.ctx.name}: BareMetalHost ended {state!r}, expected 'provisioned'")
        return StepResult(message=f"BareMetalHost provisioned ({'; '.join(applied)})")

    def _note(self, call: StepCall) -> Any:
        return lambda message: self.ctx.note(call, message)

    def join_node(self, call: StepCall) -> StepResult:
        host = self.ctx.env.host
        timeout_s = self.ctx.env.timeouts.ssh_s
        if self.join is JoinMode.metal3:
            call.waiter.wait_for(
                f"node {self.ctx.name} to be Ready",
                lambda: True if node_state(self.api, self.ctx.name)[1] else None,
                timeout_s,
                interval_s=min(self.ctx.env.timeouts.poll_s, 1.0),
            )
            return StepResult(message=f"node {self.ctx.name} Ready")
        if not call.facts.get("rhcos"):
            return StepResult(message=f"join: {self.join}; no new node to let in", skipped=True)
        addresses = tuple(i.address.split("/")[0] for i in host.interfaces if i.address)
        identity = NodeIdentity(self.ctx.name, (self.ctx.name,), addresses)
        run_id = self.ctx.run.id

        def in_handoff() -> bool:
            return self.ctx.store.get_run(run_id).status is RunStatus.running

        # Only this install's CSRs: a Node and certificates left from the install before never count.
        since = self.ctx.store.get_run(run_id).started_at
        result = await_node(
            self.api, identity, in_handoff, timeout_s, self._note(call), self.cancel, since=since
        )
        return StepResult(
            message=f"node {self.ctx.name} Ready; approved {', '.join(result.approved) or 'none'}"
            + (f"; refused {len(result.refused)}" if result.refused else ""),
            facts={"csrs_approved": result.approved, "csrs_refused": [list(r) for r in result.refused]},
        )

    def label_node(self, call: StepCall) -> StepResult:
        profile = self.ctx.env.profile
        fresh = bool(call.facts.get("rhcos")) or self.join is JoinMode.metal3
        ours = {t.key for t in profile.platform.taints} | {QUARANTINE_TAINT.key}
        applied = kube.apply(self.api, quarantined(self.docs) if fresh else self.docs, ours)
        resource = profile.gpus.resource_name if profile.gpus else None
        ready, capacity = kube.wait_ready(
            self.api, self.ctx.name, resource, profile.gpu_count, self.ctx.env.timeouts.ssh_s
        )
        if not ready or (resource is not None and capacity != str(profile.gpu_count)):
            raise VerdictFailed(
                f"{self.ctx.name}: applied, but the node is {'Ready' if ready else 'not Ready'} with "
                f"{resource}={capacity}, expected Ready with {resource}={profile.gpu_count}"
            )
        if fresh:
            kube.patch_node(self.api, node_doc(self.docs), ours)
            applied.append(f"node/{self.ctx.name}: quarantine taint dropped")
        self.ctx.state(HostState.handed_off, "node Ready, labelled and tainted")
        return StepResult(
            message=f"node {self.ctx.name} Ready with {resource}={capacity}" if resource else "node Ready",
            facts={"applied": applied, "ready": ready, "gpu_capacity": capacity, "handed_off": True},
        )


def handoff_run(env: HostEnv, record_run: str) -> Run:
    """The handoff run to resume (the latest unfinished one for this acceptance run), or a new one."""
    store = env.store
    runs = store.list_runs(env.host.name, HANDOFF_RUN_KIND)
    if runs and runs[-1].status is not RunStatus.succeeded:
        started = [e for e in store.events(run_id=runs[-1].id) if e.kind == STARTED_EVENT]
        if started and started[-1].payload.get("record_run") == record_run:
            return store.reopen_run(runs[-1].id) if runs[-1].status is not RunStatus.running else runs[-1]
        store.finish_run(runs[-1].id, RunStatus.failed)  # superseded by a newer acceptance
    run = store.create_run(env.host.name, HANDOFF_RUN_KIND)
    store.add_event(env.host.name, STARTED_EVENT, {"record_run": record_run}, run_id=run.id)
    return run


def run_handoff(
    env: HostEnv,
    api: Any,
    docs: list[dict[str, Any]],
    record_run: str,
    cancel: Cancel,
    restart_from: StepName | None = None,
    yes: bool = False,
) -> Summary:
    """Run (or resume) the handoff steps of one accepted host; the caller holds the host's lock."""
    store = env.store
    run = handoff_run(env, record_run)
    records = journal_records(store, run.id)
    planned = plan(records, restart_from, HANDOFF_STEPS)
    again = repeats_destructive(planned, records)
    if again and not yes:
        raise BadInput(
            f"{env.host.name}: --restart-from {restart_from} repeats {', '.join(again)}, which completed in "
            f"handoff run {run.id} (an RHCOS reinstall); pass --yes to confirm"
        )
    facts = facts_of(records)
    steps = HandoffSteps(StepContext(env, run), api, docs, cancel).steps()
    summary = Engine(store, env.progress, steps, cancel=cancel).run(env.host.name, run.id, planned, facts)
    if summary.outcome == "ok":
        store.finish_run(run.id, RunStatus.succeeded)
    else:
        status = RunStatus.interrupted if summary.outcome == "interrupted" else RunStatus.failed
        store.finish_run(run.id, status, keep_tokens=True)  # an RHCOS install under way may call back
    return summary


def raise_for(summary: Summary) -> None:
    """A handoff that stopped short, as the error the calling step or command stops with."""
    if summary.outcome == "interrupted":
        raise FlowInterrupted(summary.message)
    if summary.outcome != "ok":
        raise HandoffFailed(f"handoff step {summary.failed_step}: {summary.message}", summary.exit_code or 3)


def connect(kubeconfig: str | Path) -> Any:
    """The cluster's API client (provision.handoff.kube): what run_handoff's `api` is."""
    return kube.connect(Path(kubeconfig))
