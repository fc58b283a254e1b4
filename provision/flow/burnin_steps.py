"""The steps after the install: SSH with the pinned host key, the burn-in agent (start, follow,
collect). Judging the result is accept_steps'.

The agent runs under an id derived from this run (`<host>-<run id>`), and the agent's `start`
re-attaches to a run of that id that is running or finished instead of starting another: a resumed
controller never starts the (possibly destructive) burn-in twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from burnin.build import build as build_agent
from provision.acceptance.eventlog import EVENT_LOG_FILE, event_log_document
from provision.acceptance.runfiles import AFTER_FILE
from provision.agent.plan import build_plan
from provision.agent.ssh import NETWORK_ERRORS, REMOTE_DIR, RemoteAgent, SshTarget
from provision.bmc.eventlog import LogEntry, LogMark, entries_since, entry_dicts
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import connect
from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.flow.hostenv import StepContext
from provision.flow.install_steps import EVENT_LOG_MARK
from provision.model.errors import BmcError, NotFound, SshError
from provision.pdu.sampler import POWER_FILE, burnin_power, in_background
from provision.store.lifecycle import HostState


class FlowAgent(RemoteAgent):
    """The agent adapter plus reads of the run's own files, for live telemetry and the report."""

    def read_run_file(self, run_id: str, name: str, tail_lines: int = 0) -> str:
        path = f"{self.run_dir(run_id)}/{name}"
        cmd = f"tail -n {int(tail_lines)} {path}" if tail_lines else f"cat {path}"
        _, out, _ = self._exec(cmd + " 2>/dev/null || true", 60)
        return out


def known_hosts_line(address: str, port: int, key: dict[str, str]) -> str:
    where = address if port == 22 else f"[{address}]:{port}"
    return f"{where} {key['type']} {key['key']}"


def live_view(sample_line: str) -> dict[str, Any]:
    """The temperatures and power of one telemetry sample, for the progress line."""
    try:
        sample = json.loads(sample_line)
    except ValueError:
        return {}
    values = sample.get("v") if isinstance(sample, dict) else None
    if not isinstance(values, dict):
        return {}
    temps = {k: float(v) for k, v in values.items() if k.startswith("temp.") and isinstance(v, int | float)}
    temps.update(
        {k: float(v) for k, v in values.items() if k.endswith(".temp_c") and isinstance(v, int | float)}
    )
    power = [float(v) for k, v in values.items() if "power" in k and isinstance(v, int | float)]
    hottest = dict(sorted(temps.items(), key=lambda kv: -kv[1])[:3])
    return {"temps_c": hottest, "power_w": sum(power) if power else None}


class BurninSteps:
    """SSH with the pinned host key and the burn-in agent: wait_ssh, start_burnin, follow_burnin, collect."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def steps(self) -> dict[StepName, StepFn]:
        return {
            StepName.wait_ssh: self.wait_ssh,
            StepName.start_burnin: self.start_burnin,
            StepName.follow_burnin: self.follow_burnin,
            StepName.collect: self.collect,
        }

    def _agent(self, target: SshTarget) -> FlowAgent:
        return FlowAgent(target, remote_dir=str(self.ctx.env.extras.get("agent_dir") or REMOTE_DIR))

    # -- SSH -----------------------------------------------------------------------------------
    def _target(self, call: StepCall) -> SshTarget:
        host = self.ctx.env.host
        address = host.ssh_address
        if address is None:
            raise SshError(f"{self.ctx.name}: hosts.yaml gives no address to reach the installed OS")
        path = Path(self.ctx.store.state_dir) / "known_hosts" / self.ctx.name
        keys = call.facts.get("host_keys") or []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(known_hosts_line(address, host.ssh_port, k) + "\n" for k in keys))
        key_file = self.ctx.env.extras.get("ssh_key")
        return SshTarget(
            address, host.ssh_port, host.ssh_user, Path(key_file) if key_file else None, path, 10.0
        )

    def wait_ssh(self, call: StepCall) -> StepResult:
        target = self._target(call)
        last = ["no answer yet"]

        def answers() -> bool | None:
            agent = self._agent(target)
            try:
                agent.connect()
            except SshError as exc:
                if "cannot connect" not in str(exc):
                    raise  # a wrong host key or refused credentials is not "still booting"
                last[0] = str(exc)
                return None
            finally:
                agent.close()
            return True

        t = self.ctx.env.timeouts
        call.waiter.wait_for(
            f"SSH on {target.where()} with the pinned host key",
            answers,
            t.ssh_s,
            interval_s=t.poll_s,
            status=lambda: last[0],
        )
        return StepResult(message=f"{target.where()} answers with the pinned host key")

    # -- the burn-in ---------------------------------------------------------------------------
    def _plan(self, call: StepCall) -> dict[str, Any]:
        agent_run = f"{self.ctx.name}-{self.ctx.run.id}"
        plan = build_plan(
            agent_run, self.ctx.name, self.ctx.env.plan_name, self.ctx.env.profile, self.ctx.env.host
        )
        weigh = set(call.facts.get("weigh_suites") or [])
        if weigh:
            # After a part swap the suites that exercise the new parts run twice as long.
            plan["suites"] = [
                {**s, "duration_s": int(s.get("duration_s", 0)) * 2} if s["suite"] in weigh else s
                for s in plan["suites"]
            ]
        return plan

    def start_burnin(self, call: StepCall) -> StepResult:
        target = self._target(call)
        plan = self._plan(call)
        pyz = build_agent(Path(self.ctx.store.state_dir) / "agent" / "burnin-agent.pyz")
        self.ctx.state(HostState.burning_in, f"burn-in plan {self.ctx.env.plan_name}")
        agent = self._agent(target)
        try:
            agent.connect()
            agent.ship(pyz)
            state = agent.start(plan)
        finally:
            agent.close()
        self.ctx.store.put_document(self.ctx.run.id, "plan.json", plan)
        how = "re-attached to" if state.get("attached") else "started"
        total_s = sum(int(s.get("duration_s", 0)) for s in plan["suites"])
        return StepResult(
            message=f"{how} agent run {plan['run_id']} ({len(plan['suites'])} suites, {total_s} s planned)",
            evidence=("plan.json",),
            facts={"agent_run": plan["run_id"], "planned_s": total_s},
        )

    def follow_burnin(self, call: StepCall) -> StepResult:
        run_id = self.ctx.run.id

        def load() -> bytes:
            try:
                return self.ctx.store.get_document(run_id, POWER_FILE)
            except NotFound:
                return b""

        def save(blob: bytes) -> None:
            self.ctx.store.put_document(run_id, POWER_FILE, blob)

        # The host's PDU outlet beside the BMC's reading, where the site declares the PDU (pdu/sampler),
        # sampled in a thread of its own: a PDU that hangs never holds up the follow loop.
        site_pdus = self.ctx.env.catalog.site.pdus
        with burnin_power(site_pdus, self.ctx.env.host, load, save) as sampler, in_background(sampler):
            return self._follow(call)

    def _follow(self, call: StepCall) -> StepResult:
        target = self._target(call)
        run_id = str(call.facts["agent_run"])
        t = self.ctx.env.timeouts
        deadline = time.monotonic() + float(call.facts.get("planned_s", 0)) + t.burnin_margin_s
        seen, drops, suite = 0, 0, ["-"]

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event", "")
            if kind == "suite_start":
                suite[0] = str(event.get("suite"))
                self.ctx.note(call, f"suite {suite[0]} running", {"suite": suite[0]})
            elif kind == "suite_end":
                self.ctx.note(
                    call, f"suite {event.get('suite')}: {event.get('verdict')}", {"suite": event.get("suite")}
                )

        while True:
            call.waiter.cancel.check()
            if time.monotonic() > deadline:
                raise SshError(
                    f"{self.ctx.name}: follow_burnin: timed out waiting for agent run {run_id} to end "
                    f"(planned {call.facts.get('planned_s')} s + margin {t.burnin_margin_s} s)"
                )
            agent = self._agent(target)
            try:
                agent.connect()
                # Short follows: Ctrl-C and the live view get a turn between them.
                seen = agent.follow(run_id, seen, on_event, timeout_s=max(1.0, min(10.0, t.poll_s * 2)))
                tail = agent.read_run_file(run_id, "telemetry.jsonl", tail_lines=1)
                if tail.strip():
                    self.ctx.note(call, f"suite {suite[0]}", {"suite": suite[0], **live_view(tail.strip())})
                state = agent.status(run_id).get("state")
            except (*NETWORK_ERRORS, SshError) as exc:
                if isinstance(exc, SshError) and "cannot connect" not in str(exc):
                    raise
                drops += 1
                self.ctx.note(call, f"SSH dropped ({exc}); the agent runs on; reconnecting")
                call.waiter.cancel.sleep(t.poll_s)
                continue
            finally:
                agent.close()
            if state == "finished":
                return StepResult(message=f"agent run {run_id} finished ({drops} SSH drop(s) survived)")
            if state in ("dead", "absent"):
                raise SshError(f"{self.ctx.name}: the agent of run {run_id} is {state} on the host")

    def collect(self, call: StepCall) -> StepResult:
        target = self._target(call)
        run_id = str(call.facts["agent_run"])
        last = ["no attempt yet"]

        def fetch() -> tuple[dict[str, Any], str] | None:
            agent = self._agent(target)
            try:
                agent.connect()
                return agent.collect(run_id), agent.read_run_file(run_id, "telemetry.jsonl")
            except (*NETWORK_ERRORS, SshError) as exc:
                if isinstance(exc, SshError) and "cannot connect" not in str(exc):
                    raise
                last[0] = str(exc)  # the link is down for now: the results wait on the host
                return None
            finally:
                agent.close()

        t = self.ctx.env.timeouts
        result, telemetry = call.waiter.wait_for(
            f"the results of agent run {run_id} over SSH",
            fetch,
            t.collect_s,
            interval_s=t.poll_s,
            status=lambda: last[0],
        )
        self.ctx.store.put_document(self.ctx.run.id, "result.json", result)
        self.ctx.store.put_document(self.ctx.run.id, "telemetry.jsonl", telemetry.encode())
        after = self._bmc_after(call)
        return StepResult(
            message=f"result and {len(telemetry.splitlines())} telemetry lines collected",
            evidence=("result.json", "telemetry.jsonl", EVENT_LOG_FILE, *after),
        )

    def _bmc_after(self, call: StepCall) -> tuple[str, ...]:
        """The BMC after the burn-in: what its event log gained since the mark `inspect` took, and its
        inventory again (parts' health and PSUs, judged at `validate`). A BMC that cannot be read now
        is said in the event-log document (an inconclusive finding), not a failed step: the results
        are collected and the host's evidence is not lost over its BMC. Returns the files kept."""
        host = self.ctx.env.host
        mark = LogMark.from_dict(call.facts.get(EVENT_LOG_MARK))
        entries: list[LogEntry] = []
        error = mark.error
        kept: tuple[str, ...] = ()
        try:
            with connect(host.bmc) as bmc, bmc.resources() as fetch:
                if error is None:
                    entries, error = entries_since(fetch, host.bmc.system, mark)
                inv = collect_inventory(fetch, host.bmc.system)
                self.ctx.store.put_document(self.ctx.run.id, AFTER_FILE, inv.to_dict())
                kept = (AFTER_FILE,)
        except BmcError as exc:
            entries, error = entries, error or str(exc)
        doc = event_log_document(mark.to_dict(), entry_dicts(entries), error)
        self.ctx.store.put_document(self.ctx.run.id, EVENT_LOG_FILE, doc)
        return kept
