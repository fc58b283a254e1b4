"""Several controllers on one PostgreSQL store, on real parts: a real server (tests.support.postgres),
sushy-emulator systems as the BMCs, an installer stand-in per host that records every install it
performs, a loopback sshd as the installed OS, one `provision serve` answering the installers for
every controller, and `provision controller` / `provision host` as real processes.

What the tests hold: two controllers racing for the same hosts resume each host once (one install,
one resume); a controller limited to a rack never touches a host of another; a controller SIGKILLed
mid-install leaves its host to a standing `provision controller`, which waits for the lease to
expire, resumes from the journal at the install's wait and finishes it with one install in all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provision.flow.engine import STEP_NAMES
from provision.store.state import RunStatus, StateStore
from tests.support.bmcrig import Emulator, emulator_argv, fake_systems
from tests.support.flowrig import write_profiles
from tests.support.postgres import Server, postgres_or_skip
from tests.support.procs import free_port, running, stop_pid
from tests.support.sshd import Sshd, sshd_setup

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RACK_A, RACK_B = "circle-1-limbo", "circle-1-limbo-b"
# One host per use, so the install records of one test never count another's (any test order).
HOSTS = {f"flow-node-{i}": RACK_A if i <= 2 else RACK_B for i in range(1, 6)}
ENV = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}


@dataclass
class Rig:
    work: Path
    profiles: Path
    shared: Path  # the documents directory every controller mounts
    ssh: Sshd
    boot_port: int
    pg: Server

    def installs(self, host: str) -> int:
        record = self.work / f"installs-{host}.jsonl"
        lines = record.read_text().splitlines() if record.exists() else []
        return sum(1 for x in lines if json.loads(x).get("started_status") == 204)

    def argv(self, url: str, *args: str) -> list[str]:
        return [
            *(sys.executable, "-m", "provision", "--profiles", str(self.profiles), "--state", url),
            *args,
            *("--json", "--plan", "quick", "--no-serve", "--identity", str(self.ssh.client_key)),
            *("--agent-dir", str(self.work / "agent-on-host"), "--log-dir", str(self.work / "logs")),
        ]

    @contextmanager
    def store(self, lease_s: float = 2) -> Iterator[str]:
        """A fresh database, with `provision serve` on it for the installers; yields its URL."""
        url = self.pg.url(self.pg.new_database(), self.shared, extra=f"&lease_s={lease_s}")
        StateStore.open(url).close()
        serve = [sys.executable, "-m", "provision", "--profiles", str(self.profiles), "--state", url]
        serve += ["serve", "--listen", f"127.0.0.1:{self.boot_port}"]
        log = self.work / f"serve-{time.monotonic_ns()}.log"
        with running(serve, log=log, port=self.boot_port, env=ENV, cwd=REPO):
            yield url


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("controllers")
    with postgres_or_skip() as pg, ExitStack() as stack:
        systems = fake_systems(list(HOSTS))
        bmc_port = free_port()
        emu = Emulator(f"http://127.0.0.1:{bmc_port}", work / "bmc" / "emulator.log", systems)
        stack.enter_context(
            running(emulator_argv(work / "bmc", systems, bmc_port), log=emu.log, port=bmc_port)
        )
        argv, ssh = sshd_setup(work / "sshd")
        stack.enter_context(running(argv, log=ssh.log, port=ssh.port))
        boot_port = free_port()
        profiles = write_profiles(work / "profiles", emu, boot_port, ssh.port, ssh.user)
        inventory = yaml.safe_load((profiles / "hosts.yaml").read_text())
        for h in inventory["hosts"]:
            h["rack"] = HOSTS[h["name"]]
        (profiles / "hosts.yaml").write_text(yaml.safe_dump(inventory))
        shared = work / "shared"
        for s in systems:
            installer = [
                *(sys.executable, "-m", "tests.support.installer", "--bmc", emu.url, "--system", s.path),
                *("--ipxe-url-file", str(shared / "netboot" / f"{s.name}.url")),
                *("--host-keys", str(ssh.host_pub), "--record", str(work / f"installs-{s.name}.jsonl")),
                # flow-node-4's controller is killed mid-install: an install long enough to be sure of it.
                *("--install-s", "3" if s.name == "flow-node-4" else "0.5"),
            ]
            stack.enter_context(running(installer, log=work / f"installer-{s.name}.log", cwd=REPO))
        yield Rig(work, profiles, shared, ssh, boot_port, pg)


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


def _completions(store: StateStore, run_id: str) -> dict[str, int]:
    counts = dict.fromkeys(STEP_NAMES, 0)
    for r in store.steps(run_id):
        if r.outcome is not None and str(r.outcome) in ("ok", "skipped"):
            counts[r.step] += 1
    return counts


def test_two_controllers_race_for_the_same_hosts_and_each_host_is_resumed_once(rig: Rig) -> None:
    with rig.store() as url:
        with StateStore.open(url) as store:
            # Runs a controller started and died before its first step: what a take-over finds.
            left = {
                h: store.create_run(h, "provision").id for h in ("flow-node-1", "flow-node-2", "flow-node-3")
            }
        argv = rig.argv(url, "controller", "--once", "--rack", RACK_A)
        procs = [
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO
            )
            for _ in range(2)
        ]
        try:
            outs = [p.communicate(timeout=300) for p in procs]
        finally:
            for p in procs:
                stop_pid(p.pid)
        assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
        claims = [[e["host"] for e in _events(out) if e["event"] == "claim"] for out, _ in outs]
        assert set(claims[0]) | set(claims[1]) == {"flow-node-1", "flow-node-2"}
        with StateStore.open(url) as store:
            for host in ("flow-node-1", "flow-node-2"):
                assert [(r.id, r.status) for r in store.list_runs(host)] == [
                    (left[host], RunStatus.succeeded)
                ]
                resumed = [e for e in store.events(host=host) if e.kind == "flow_resumed"]
                assert len(resumed) == 1, host  # claimed and resumed by one controller only
                assert _completions(store, left[host]) == dict.fromkeys(STEP_NAMES, 1), host
                assert rig.installs(host) == 1, host
            # Rack B is outside both controllers' scope: its run is as it was left, untouched.
            assert store.events(host="flow-node-3") == [] and store.steps(left["flow-node-3"]) == []
            assert store.get_run(left["flow-node-3"]).status is RunStatus.running
        assert rig.installs("flow-node-3") == 0


def test_a_killed_controllers_host_is_taken_over_by_a_standing_controller_after_its_lease(rig: Rig) -> None:
    host = "flow-node-4"
    log = rig.work / "standing.log"
    with rig.store() as url, open(log, "w") as errors:
        standing = rig.argv(url, "controller", "--rack", RACK_B, "--interval", "0.5")
        second = subprocess.Popen(
            standing, stdout=subprocess.PIPE, stderr=errors, text=True, env=ENV, cwd=REPO
        )
        first: subprocess.Popen[str] | None = None
        seen: list[dict[str, object]] = []

        def follow(until: str) -> None:
            assert second.stdout is not None
            for line in second.stdout:
                seen.extend(_events(line))
                if seen and seen[-1]["event"] == until:
                    return
            raise AssertionError(f"the standing controller ended before {until!r}: {log.read_text()[-2000:]}")

        try:
            follow("controller")  # it stands by: nothing to claim yet
            first = subprocess.Popen(
                rig.argv(url, "host", host),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=ENV,
                cwd=REPO,
                start_new_session=True,
            )
            assert first.stdout is not None
            for line in first.stdout:
                e = json.loads(line) if line.startswith("{") else {}
                if e.get("event") == "step_finished" and e.get("step") == "pxe_boot":
                    break  # the host is booting the installer
            follow("held")  # the standing controller sees the live controller's lease and leaves the host
            os.kill(first.pid, signal.SIGKILL)  # mid-install
            first.wait(timeout=30)
            assert first.returncode == -signal.SIGKILL
            follow("finish")
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=60)
        finally:
            for p in (first, second):
                if p is not None:
                    stop_pid(p.pid)
        seen += _events(out)
        assert second.returncode == 0, log.read_text()[-2000:]
        kinds = [e["event"] for e in seen]
        # The killed controller's lease stood until it expired: the scans till then saw the host held.
        held = next(e for e in seen if e["event"] == "held")
        assert kinds[0] == "controller" and kinds.index("held") < kinds.index("claim")
        assert "locked by pid" in str(held["by"]) and held["host"] == host
        claim = next(e for e in seen if e["event"] == "claim")
        assert (claim["host"], claim["run_status"], claim["from_step"]) == (host, "running", "wait_install")
        assert kinds[-2:] == ["finish", "summary"]
        assert seen[-1]["finished"] == [host] and seen[-1]["claimed"] == [host]
        with StateStore.open(url) as store:
            runs = store.list_runs(host)
            assert [r.status for r in runs] == [RunStatus.succeeded]
            assert _completions(store, runs[0].id) == dict.fromkeys(STEP_NAMES, 1)
            resumed = [e for e in store.events(host=host) if e.kind == "flow_resumed"]
            assert len(resumed) == 1 and resumed[0].payload["steps"][0] == "wait_install"
        assert rig.installs(host) == 1  # the install the dead controller started, and no other


def test_sigterm_stops_a_controller_mid_run_with_its_lease_released_and_exit_0(rig: Rig) -> None:
    host = "flow-node-5"
    with rig.store() as url:
        with StateStore.open(url) as store:
            run_id = store.create_run(host, "provision").id

        def booted() -> bool:
            with StateStore.open(url) as store:
                return any(r.step == "pxe_boot" and r.outcome is not None for r in store.steps(run_id))

        argv = rig.argv(url, "controller", "--rack", RACK_B, "--interval", "0.5")
        log = rig.work / "stopped.log"
        with open(log, "w") as errors:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True, env=ENV, cwd=REPO)
        try:
            deadline = time.monotonic() + 120
            while not booted():
                assert proc.poll() is None and time.monotonic() < deadline, (
                    "the controller never booted the host"
                )
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)  # the install is under way: wait_install is waiting
            out, _ = proc.communicate(timeout=60)
        finally:
            stop_pid(proc.pid)
        assert proc.returncode == 0, log.read_text()[-2000:]
        summary = _events(out)[-1]
        assert (summary["event"], summary["claimed"], summary["stopped"]) == ("summary", [host], [host])
        with StateStore.open(url) as store:
            assert store.get_run(run_id).status is RunStatus.interrupted
            # The lease was released: another controller claims the host at once, no expiry to wait.
            with store.host_lock(host):
                pass
        again = subprocess.run(
            rig.argv(url, "controller", "--once", "--rack", RACK_B),
            capture_output=True,
            text=True,
            env=ENV,
            cwd=REPO,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr[-2000:]
        events = _events(again.stdout)
        claim = next(e for e in events if e["event"] == "claim")
        assert claim["run_status"] == "interrupted" and events[-1]["finished"] == [host]
        with StateStore.open(url) as store:
            assert _completions(store, run_id) == dict.fromkeys(STEP_NAMES, 1)
        assert rig.installs(host) == 1
