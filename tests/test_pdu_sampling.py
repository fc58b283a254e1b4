"""The burn-in's power sampler runs in a thread of its own (provision.pdu.sampler.in_background):
a PDU that never answers holds up only its own samples, never the follow loop (the sampler alone,
and the real follow_burnin against a real agent over a loopback sshd), and what it leaves in
power.jsonl is its error (inconclusive), never 0 W."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from burnin.build import build as build_agent
from provision.agent.ssh import RemoteAgent, SshTarget
from provision.flow.burnin_steps import BurninSteps
from provision.flow.engine import Cancel, StepCall, StepName
from provision.flow.hostenv import HostEnv, StepContext
from provision.flow.waits import Waiter
from provision.model.catalog import load_catalog
from provision.model.errors import NotFound
from provision.model.pdus import Pdu
from provision.pdu.meters import POWER_FILE
from provision.pdu.sampler import PowerSampler, in_background
from provision.store.state import StateStore
from tests.conftest import PROFILES, require_tool
from tests.support.procs import free_port
from tests.support.snmpsim import hung_agent
from tests.support.sshd import sshd

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)

FOLLOW_ITERATIONS = 50


def site_pdu(port: int) -> Pdu:
    return Pdu.model_validate(
        {
            "name": "inferno-pdu-circle2-1",
            "address": "127.0.0.1",
            "port": port,
            "mib": "raritan-pdu2",
            "snmp": {"version": "v2c", "community": "env:TEST_PDU_COMMUNITY"},
            "continuous_w": 4992,
            "timeout_s": 3.0,
            "retries": 0,
        }
    )


def lines(blob: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in blob.decode().splitlines()]


def test_a_pdu_that_never_answers_does_not_hold_up_the_follow_loop(monkeypatch: Any) -> None:
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    saved: list[bytes] = []
    followed: list[int] = []
    with hung_agent() as agent:
        sampler = PowerSampler(
            site_pdu(agent.port), 1, "inferno-host-compute-1", saved.append, interval_s=0.05
        )
        with in_background(sampler):
            # The sampler has asked the PDU and waits for an answer that never comes; the follow
            # loop goes on meanwhile: every iteration of it runs before that one sample ends.
            assert agent.request(timeout_s=30), "the sampler never asked the PDU"
            for i in range(FOLLOW_ITERATIONS):
                followed.append(i)
            kept_while_following = len(saved)
    assert len(followed) == FOLLOW_ITERATIONS and kept_while_following == 0
    # The sample under way was let finish at the end: its error is kept, never a 0 W reading.
    doc = lines(saved[-1])
    assert doc[0]["meta"]["pdu"] == "inferno-pdu-circle2-1"
    assert len(doc) >= 2
    for line in doc[1:]:
        assert line["v"] == {}
        assert line["errors"]["pdu"] == (
            f"SNMP agent 127.0.0.1:{agent.port}: no answer within 3 s x 1 tries "
            "(address, port, community or v3 user wrong, or the PDU is down)"
        )


class Notes:
    """A Progress that keeps the follow loop's live notes, each with how many power samples the
    run's power.jsonl held when it was made."""

    def __init__(self, store: StateStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.live: list[int] = []

    def samples(self) -> int:
        try:
            blob = self.store.get_document(self.run_id, POWER_FILE)
        except NotFound:
            return 0
        return len(blob.decode().splitlines()) - 1  # the first line is the meta

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        if data and "temps_c" in data:  # one per iteration of the follow loop: the telemetry's tail
            self.live.append(self.samples())

    def step_started(self, host: str, step: str, does: str) -> None:
        pass

    def step_skipped(self, host: str, step: str, why: str) -> None:
        pass

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        pass

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        pass


def test_the_follow_loop_goes_on_while_a_hung_pdu_is_read(tmp_path: Path, monkeypatch: Any) -> None:
    """follow_burnin against a real agent over a loopback sshd, its host's PDU a port that never
    answers (8 s per try): the loop follows the agent through its whole run while the one PDU
    sample under way waits, so several iterations are made before any sample is kept (the loop
    that sampled inline made one, then waited out the PDU)."""
    require_tool("stress-ng")
    monkeypatch.setenv("TEST_PDU_COMMUNITY", "raritan")
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")
    remote = tmp_path / "remote"
    with sshd(tmp_path / "sshd") as ssh, hung_agent() as pdu_port:
        kind, key = ssh.host_pub.read_text().split()[:2]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{ssh.port} {kind} {key}\n")
        agent = RemoteAgent(
            SshTarget("127.0.0.1", ssh.port, ssh.user, ssh.client_key, known, 10), str(remote)
        )
        plan = {"run_id": "hung-pdu-1", "host": "loopback", "sample_interval_s": 0.5}
        try:
            agent.connect()
            agent.ship(build_agent(tmp_path / "agent" / "burnin-agent.pyz"))
            agent.start({**plan, "suites": [{"suite": "cpu", "duration_s": 4}]})
        finally:
            agent.close()

        pdu = site_pdu(pdu_port.port).model_copy(update={"name": HOST.pdu, "timeout_s": 8.0})
        closed = f"http://127.0.0.1:{free_port()}"  # the BMC does not answer either: its error is kept
        host = HOST.model_copy(
            update={
                "address": "127.0.0.1",
                "ssh_port": ssh.port,
                "ssh_user": ssh.user,
                "bmc": HOST.bmc.model_copy(update={"url": closed, "attempts": 1, "retry_delay_s": 0.0}),
            }
        )
        catalog = dataclasses.replace(CATALOG, site=CATALOG.site.model_copy(update={"pdus": (pdu,)}))
        store = StateStore.open(tmp_path / "state")
        try:
            run = store.create_run(host.name, "provision")
            notes = Notes(store, run.id)
            timeouts = PROFILE.timeouts.model_copy(update={"poll_s": 0.5})
            extras = {"ssh_key": str(ssh.client_key), "agent_dir": str(remote)}
            env = HostEnv(
                store, host, PROFILE, timeouts, notes, catalog, "http://127.0.0.1:1", tmp_path, PROFILES
            )
            env.extras.update(extras)
            facts = {"agent_run": "hung-pdu-1", "planned_s": 4, "host_keys": [{"type": kind, "key": key}]}
            waiter = Waiter(host.name, "follow_burnin", notes, Cancel())
            call = StepCall(host.name, run.id, StepName.follow_burnin, facts, waiter, 1)
            result = BurninSteps(StepContext(env, run)).follow_burnin(call)
            assert result.message.startswith("agent run hung-pdu-1 finished"), result.message
            assert pdu_port.request(timeout_s=0), "the sampler never asked the PDU"
            assert len([n for n in notes.live if n == 0]) >= 2, notes.live
            doc = lines(store.get_document(run.id, POWER_FILE))
        finally:
            store.close()
    assert doc[0]["meta"]["pdu"] == HOST.pdu and len(doc) >= 2
    assert doc[1]["v"] == {}
    assert doc[1]["errors"]["pdu"].startswith(f"SNMP agent 127.0.0.1:{pdu_port.port}: no answer within 8 s")
    assert "bmc" in doc[1]["errors"]
