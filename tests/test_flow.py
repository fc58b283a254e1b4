"""`provision host` end to end on real parts: sushy-emulator as the BMC, the real boot server
(embedded in the controller), an installer stand-in that fetches the iPXE script and kickstart with
the run's token and posts the callbacks, a loopback sshd as the installed OS, and the real agent.

The controller runs as its own process, so the resume tests SIGKILL it for real. What this machine
is (a 2-core VM without DMI tables) does not match any profile, so the verdict of these runs is an
honest `rejected`; what the tests hold is the flow: every step done exactly once, one install, one
agent start, the same end state as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

from provision.flow.engine import STEP_NAMES
from provision.store.lifecycle import HostState
from provision.store.state import StateStore
from tests.support.bmcrig import Emulator, emulator_argv, fake_systems
from tests.support.flowhost import REPO, FlowHost, flow_host
from tests.support.flowrig import swap_parts, write_profiles
from tests.support.procs import free_port, running, stop_pid
from tests.support.sshd import sshd_setup

pytestmark = pytest.mark.slow


def journal(h: FlowHost) -> list[tuple[str, str | None]]:
    with StateStore.open(h.state) as store:
        run = store.latest_run(h.name)
        assert run is not None
        return [(r.step, str(r.outcome) if r.outcome else None) for r in store.steps(run.id)]


def completions(h: FlowHost) -> dict[str, int]:
    counts = dict.fromkeys(STEP_NAMES, 0)
    for step, outcome in journal(h):
        if outcome in ("ok", "skipped"):
            counts[step] += 1
    return counts


def host_state(h: FlowHost) -> HostState | None:
    with StateStore.open(h.state) as store:
        return store.get_host_state(h.name)


def agent_starts(h: FlowHost) -> int:
    runs = h.work / "agent-on-host" / "runs"
    events = list(runs.glob("*/events.jsonl"))
    return sum(1 for f in events for line in f.read_text().splitlines() if '"run_start"' in line)


def runs(h: FlowHost) -> list[str]:
    with StateStore.open(h.state) as store:
        return [f"{r.id}:{r.status}" for r in store.list_runs(h.name)]


def test_resume_after_sigkill_at_every_step_boundary_repeats_nothing(tmp_path: Path) -> None:
    with flow_host(tmp_path) as h:
        # Each invocation is killed as soon as it reports a step done: the next one resumes there.
        def finished() -> bool:
            return bool(runs(h)) and runs(h)[-1].endswith(":succeeded")

        for _ in STEP_NAMES:
            if finished():
                break  # the last steps are quick: the run may end before the SIGKILL lands
            killed = h.run_until(None)
            assert killed.rc in (-signal.SIGKILL, 1), killed.stderr
        if not finished():
            last = h.run()
            assert last.rc == 1, last.stderr  # not accepted: this machine is not the profile's hardware
            assert last.summary["outcome"] == "ok" and last.summary["verdict"] == "rejected"
        assert len(runs(h)) == 1 and runs(h)[0].endswith(":succeeded"), runs(h)
        with StateStore.open(h.state) as store:
            resumed = [e for e in store.events(host=h.name) if e.kind == "flow_resumed"]
        assert len(resumed) >= 8  # killed at (nearly) every boundary, some steps outrun the signal
        assert completions(h) == dict.fromkeys(STEP_NAMES, 1)
        assert h.install_count() == 1
        assert agent_starts(h) == 1
        assert host_state(h) is HostState.rejected
        run_dir = next((h.state / "runs").iterdir())
        for name in ("inventory-redfish.json", "ks.cfg", "result.json", "acceptance.json", "report.html"):
            assert (run_dir / name).is_file(), name
        # the token is never stored: the kept kickstart carries the placeholder
        assert "NO-RUN-TOKEN" in (run_dir / "ks.cfg").read_text()
        assert not (h.state / "netboot" / f"{h.name}.url").exists()

        again = h.run()  # a finished, not-accepted host: a new run, a new install
        assert again.rc == 1 and h.install_count() == 2
        assert len(runs(h)) == 2


def test_install_failure_stops_with_the_log_tail_and_never_reinstalls_by_itself(tmp_path: Path) -> None:
    with flow_host(tmp_path, fail_installs=1) as h:
        first = h.run()
        assert first.rc == 3, first.stderr
        assert first.summary["failed_step"] == "wait_install"
        assert "storage configuration failed: disk /dev/disk/by-id/ata-X not found" in str(
            first.summary["message"]
        )
        assert "--restart-from pxe_boot" in str(first.summary["message"])
        assert host_state(h) is HostState.provisioning

        second = h.run()  # a plain rerun reports the same failure; it does not power-cycle again
        assert second.rc == 3 and second.summary["failed_step"] == "wait_install"
        assert h.install_count() == 1

        third = h.run("--restart-from", "pxe_boot")
        assert third.rc == 1, third.stderr
        assert third.summary["outcome"] == "ok"
        assert h.install_count() == 2


def test_resume_after_ctrl_c_and_an_ssh_drop_during_burnin_starts_the_agent_once(tmp_path: Path) -> None:
    with flow_host(tmp_path, cpu_s=12) as h:
        proc = subprocess.Popen(
            h.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env, cwd=REPO
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if '"suite cpu running"' in line:
                    proc.send_signal(signal.SIGINT)
                    break
            _, err = proc.communicate(timeout=60)
        finally:
            stop_pid(proc.pid)
        assert proc.returncode == 130, err
        assert journal(h)[-1] == ("follow_burnin", "failed")
        with StateStore.open(h.state) as store:
            run = store.latest_run(h.name)
            assert run is not None
            assert store.steps(run.id)[-1].message == "interrupted (Ctrl-C)"
        assert host_state(h) is HostState.burning_in

        # Rerun; while it follows the burn-in, the host's sshd dies and comes back.
        proc = subprocess.Popen(
            h.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env, cwd=REPO
        )
        notes: list[str] = []
        # The link stays down until the controller has noticed (it connects once per poll), so
        # the test does not depend on how fast this machine is; a watchdog brings it back anyway.
        back = threading.Lock()
        up = [False]

        def bring_back() -> None:
            with back:
                if not up[0]:
                    h.sshd.start()
                    up[0] = True

        watchdog = threading.Timer(60, bring_back)
        down = False
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                ev = json.loads(line)
                if ev.get("event") == "note":
                    notes.append(str(ev["message"]))
                if not down and ev.get("step") == "follow_burnin" and ev.get("event") == "note":
                    h.sshd.stop()  # the link to the host goes away, mid-burn-in
                    down = True
                    watchdog.start()
                elif down and notes and notes[-1].startswith("SSH dropped"):
                    bring_back()
            proc.wait(timeout=60)
        finally:
            watchdog.cancel()
            if down:
                bring_back()
            stop_pid(proc.pid)
        assert proc.returncode == 1
        assert any(n.startswith("SSH dropped") for n in notes), notes
        assert completions(h) == dict.fromkeys(STEP_NAMES, 1)
        assert agent_starts(h) == 1


def test_bmc_down_mid_flow_fails_clearly_then_the_rerun_continues(tmp_path: Path) -> None:
    with flow_host(tmp_path) as h:
        killed = h.run_until("open_run")
        assert killed.rc == -signal.SIGKILL
        h.stop_bmc()
        down = h.run()
        assert down.rc == 3, down.stderr
        assert down.summary["failed_step"] == "pxe_boot"
        assert h.emu.url.removeprefix("http://") in str(down.summary["message"])
        h.start_bmc()
        up = h.run()
        assert up.rc == 1 and up.summary["outcome"] == "ok", up.stderr
        assert completions(h) == dict.fromkeys(STEP_NAMES, 1)
        assert h.install_count() == 1


def test_yes_is_required_to_provision_an_accepted_host_again(tmp_path: Path) -> None:
    with flow_host(tmp_path) as h:
        h.state.mkdir(parents=True, exist_ok=True)
        with StateStore.open(h.state) as store:
            store.set_host_state(h.name, HostState.accepted, reason="test: accepted earlier")
        refused = h.run()
        assert refused.rc == 2
        assert f"provision: {h.name} is accepted: a new provision run reinstalls its OS" in refused.stderr
        assert "pass --yes to confirm" in refused.stderr
        assert h.install_count() == 0
        assert os.listdir(h.state / "runs") == [] if (h.state / "runs").exists() else True


def test_reinstall_after_a_dimm_and_gpu_swap_reports_exactly_those_changes(tmp_path: Path) -> None:
    with flow_host(tmp_path, compute=True) as h:
        first = h.run()
        assert first.summary["outcome"] == "ok", first.stderr
        first_run = str(first.summary["run_id"])
        assert h.install_count() == 1

        dimm, gpu = swap_parts(h.work / "tree.json")
        gpu_id = gpu.rsplit("/", 1)[1]
        again = h.run(command="reinstall")
        assert again.summary["outcome"] == "ok", again.stderr
        run_id = str(again.summary["run_id"])
        shown = [
            str(e["message"]) for e in again.events if e.get("event") == "note" and e.get("step") == "inspect"
        ]
        changed = sorted(m for m in shown if m.startswith("changed: "))
        dimm_loc = dimm.rsplit("/", 1)[1]
        assert len(changed) == 2, shown
        assert changed[0].startswith(f"changed: dimm {dimm_loc}: replaced (serial ") and changed[0].endswith(
            "-NEW)"
        )
        assert changed[1].startswith(f"changed: gpu {gpu_id}: replaced (serial ") and changed[1].endswith(
            "-NEW)"
        )
        assert h.install_count() == 2  # reinstalled

        run_dir = h.state / "runs" / run_id
        record = json.loads((run_dir / "acceptance.json").read_text())
        assert record["reinstall"]["previous_run"] == first_run
        assert record["reinstall"]["changes"] == [c.removeprefix("changed: ") for c in changed]
        assert record["reinstall"]["weighted_suites"] == ["memory", "gpu"]
        assert record["run"]["kind"] == "reinstall"
        html = (run_dir / "report.html").read_text()
        assert 'id="reinstall"' in html and first_run in html
        plan = json.loads((run_dir / "plan.json").read_text())
        assert {s["suite"]: s["duration_s"] for s in plan["suites"]} == {"cpu": 2, "gpu": 2}  # gpu x2

        with StateStore.open(h.state) as store:
            states = [t.state for t in store.host_history(h.name) if t.reason.startswith(f"run {run_id}")]
        assert states[0] is HostState.maintenance  # out of the pool from the start
        assert states[-1] is HostState.rejected


@contextmanager
def fleet(
    tmp_path: Path, names: list[str], dead: tuple[str, ...] = (), cpu_s: int = 2
) -> Iterator[list[str]]:
    """Hosts on one emulator, each with its installer, one loopback sshd for all; hosts in `dead`
    have a BMC URL where nothing listens. Yields the controller's argv (add the host selection)."""
    with ExitStack() as stack:
        systems = fake_systems(names)
        bmc_port = free_port()
        emu = Emulator(f"http://127.0.0.1:{bmc_port}", tmp_path / "bmc" / "emulator.log", systems)
        stack.enter_context(
            running(emulator_argv(tmp_path / "bmc", systems, bmc_port), log=emu.log, port=bmc_port)
        )
        argv, ssh = sshd_setup(tmp_path / "sshd")
        stack.enter_context(running(argv, log=ssh.log, port=ssh.port))
        profiles = write_profiles(tmp_path / "profiles", emu, free_port(), ssh.port, ssh.user, cpu_s=cpu_s)
        hosts = yaml.safe_load((profiles / "hosts.yaml").read_text())
        for h in hosts["hosts"]:
            if h["name"] in dead:
                h["bmc"]["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        (profiles / "hosts.yaml").write_text(yaml.safe_dump(hosts))
        state = tmp_path / "state"
        for s in systems:
            installer = [
                *(sys.executable, "-m", "tests.support.installer", "--bmc", emu.url, "--system", s.path),
                *("--ipxe-url-file", str(state / "netboot" / f"{s.name}.url")),
                *("--host-keys", str(ssh.host_pub), "--record", str(tmp_path / f"installs-{s.name}.jsonl")),
            ]
            stack.enter_context(running(installer, log=tmp_path / f"installer-{s.name}.log", cwd=REPO))
        yield [
            *(sys.executable, "-m", "provision", "--profiles", str(profiles), "--state", str(state)),
            *("host", "--json", "--plan", "quick", "--log-dir", str(tmp_path / "logs")),
            *("--identity", str(ssh.client_key), "--agent-dir", str(tmp_path / "agent-on-host")),
        ]


FLEET_ENV = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}


def fleet_summary(stdout: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [json.loads(x) for x in stdout.splitlines() if '"summary"' in x][-1][
        "hosts"
    ]
    return rows


def test_fleet_runs_hosts_in_parallel_and_continues_past_a_failed_host(tmp_path: Path) -> None:
    names = ["flow-node-1", "flow-node-2", "flow-node-3"]
    logs = tmp_path / "logs"
    with fleet(tmp_path, names, dead=("flow-node-3",)) as argv:
        argv += ["--rack", "circle-1-limbo", "--parallel", "2"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=FLEET_ENV, cwd=REPO, timeout=240)
    assert proc.returncode == 3, proc.stderr  # one host could not run: an external failure
    summary = fleet_summary(proc.stdout)
    assert [(r["host"], r["outcome"], r["verdict"]) for r in summary] == [
        ("flow-node-1", "ok", "rejected"),
        ("flow-node-2", "ok", "rejected"),
        ("flow-node-3", "failed", None),
    ]
    assert summary[2]["failed_step"] == "inspect" and "127.0.0.1" in str(summary[2]["message"])
    for name in names:
        log = (logs / f"{name}.log").read_text()
        assert "inspect: started" in log
    assert "handoff: skipped" in (logs / "flow-node-1.log").read_text()
    assert "handoff" not in (logs / "flow-node-3.log").read_text()
    for name in names[:2]:
        assert len((tmp_path / f"installs-{name}.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "installs-flow-node-3.jsonl").exists()


def test_fleet_ctrl_c_interrupts_every_host_and_the_rerun_finishes_them(tmp_path: Path) -> None:
    names = ["flow-node-1", "flow-node-2"]
    with fleet(tmp_path, names, cpu_s=8) as argv:
        argv += ["--all", "--parallel", "1"]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=FLEET_ENV, cwd=REPO
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if '"suite cpu running"' in line:
                    proc.send_signal(signal.SIGINT)
                    break
            out, err = proc.communicate(timeout=60)
        finally:
            stop_pid(proc.pid)
        assert proc.returncode == 130, err
        summary = fleet_summary(out)
        assert [(r["host"], r["outcome"], r["failed_step"]) for r in summary] == [
            ("flow-node-1", "interrupted", "follow_burnin"),
            ("flow-node-2", "interrupted", None),  # never started: --parallel 1
        ]
        assert "not started" in str(summary[1]["message"])

        again = subprocess.run(argv, capture_output=True, text=True, env=FLEET_ENV, cwd=REPO, timeout=240)
        assert again.returncode == 1, again.stderr  # both finished; neither is accepted here
        assert [(r["outcome"], r["verdict"]) for r in fleet_summary(again.stdout)] == [("ok", "rejected")] * 2
        for name in names:
            assert len((tmp_path / f"installs-{name}.jsonl").read_text().splitlines()) == 1
