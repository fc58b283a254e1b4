"""The agent as a process: detached start, re-attach instead of a second run, follow, collect; the
zipapp; bad plans; and over SSH to a loopback sshd, including a dropped connection mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burnin.build import build
from provision.agent.ssh import RemoteAgent, SshTarget, run_remote
from provision.model.errors import SshError
from tests.conftest import REPO, require_tool
from tests.support.procs import free_port, running, stop_pid

pytestmark = pytest.mark.slow


def agent(*args: str, pyz: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(pyz)] if pyz else [sys.executable, "-m", "burnin"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def write_plan(path: Path, run_id: str, cpu_s: int = 3) -> Path:
    plan = {
        "run_id": run_id,
        "host": "test",
        "sample_interval_s": 0.5,
        "suites": [{"suite": "cpu", "duration_s": cpu_s}],
    }
    path.write_text(json.dumps(plan))
    return path


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("agent") / "burnin-agent.pyz")


def test_bad_plan_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"run_id": "../x", "suites": [{"suite": "cpu"}]}))
    r = agent("run", str(bad), "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2
    assert r.stderr == f"burnin-agent: {bad}: run_id: expected letters, digits, '.', '_' or '-', got '../x'\n"
    bad.write_text('{"run_id": "a",\n "suites": [}')
    r = agent("run", str(bad), "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2 and r.stderr.startswith(f"burnin-agent: {bad}:2: expected JSON")


def test_detached_start_reattaches_follows_and_collects(tmp_path: Path, pyz: Path) -> None:
    require_tool("stress-ng")
    plan = write_plan(tmp_path / "plan.json", "detached1", cpu_s=8)
    runs = tmp_path / "runs"
    first = json.loads(agent("start", str(plan), "--runs", str(runs), pyz=pyz).stdout)
    try:
        assert first["attached"] is False and first["started"] is True and first["state"] == "running"
        second = json.loads(agent("start", str(plan), "--runs", str(runs), pyz=pyz).stdout)
        assert second["attached"] is True and second["pid"] == first["pid"]
        run_dir = runs / "detached1"
        early = agent("collect", "--run-dir", str(run_dir), pyz=pyz)
        assert early.returncode == 4 and "is running, not finished" in early.stderr
        f = agent("follow", "--run-dir", str(run_dir), "--timeout", "60", pyz=pyz)
        assert f.returncode == 0
        events = [json.loads(line) for line in f.stdout.splitlines()]
        assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
        assert [e["line"] for e in events] == list(range(1, len(events) + 1))
        skipped = agent("follow", "--run-dir", str(run_dir), "--skip", str(len(events) - 1), pyz=pyz)
        assert [json.loads(line)["event"] for line in skipped.stdout.splitlines()] == ["run_end"]
        result = json.loads(agent("collect", "--run-dir", str(run_dir), pyz=pyz).stdout)
        assert (
            result["run_id"] == "detached1" and result["ended_at"] and result["suites"][0]["suite"] == "cpu"
        )
        # once finished, `start` reports the finished run instead of running it again
        again = json.loads(agent("start", str(plan), "--runs", str(runs), pyz=pyz).stdout)
        assert again["attached"] is True and again["state"] == "finished"
    finally:
        if first.get("pid"):
            stop_pid(int(first["pid"]))


def test_stop_cancels_the_run_and_its_tools(tmp_path: Path) -> None:
    require_tool("stress-ng")
    plan = write_plan(tmp_path / "plan.json", "stopped1", cpu_s=120)
    runs = tmp_path / "runs"
    first = json.loads(agent("start", str(plan), "--runs", str(runs)).stdout)
    run_dir = runs / "stopped1"
    try:
        deadline = time.monotonic() + 30
        while '"evidence":"cpu.stress_ng"' not in (run_dir / "events.jsonl").read_text():
            assert time.monotonic() < deadline, "stress-ng never started"
            time.sleep(0.2)
        assert json.loads(agent("stop", "--run-dir", str(run_dir)).stdout) == {"stopped": True}
        assert agent("follow", "--run-dir", str(run_dir), "--timeout", "60").returncode == 0
        result = json.loads(agent("collect", "--run-dir", str(run_dir)).stdout)
        (cpu,) = result["suites"]
        stress = next(f for f in cpu["findings"] if f["id"] == "cpu_stress:host")
        assert (stress["verdict"], stress["observed"]) == ("inconclusive", "cancelled")
        assert cpu["verdict"] == "inconclusive"
    finally:
        stop_pid(int(first["pid"]))


# -- SSH -------------------------------------------------------------------------------------------


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    sshd_bin = require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    d = tmp_path / "sshd"
    d.mkdir()
    for key in ("host_ed25519", "client_ed25519"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host_ed25519'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    host_pub = (d / "host_ed25519.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    with running([sshd_bin, "-D", "-e", "-f", str(cfg)], log=d / "sshd.log", port=port):
        yield {
            "target": SshTarget(
                "127.0.0.1", port, os.environ.get("USER", "root"), d / "client_ed25519", d / "known_hosts", 10
            ),
            "dir": d,
        }


def test_ssh_unknown_host_key_is_refused(sshd: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    t: SshTarget = sshd["target"]
    bad = SshTarget(t.host, t.port, t.user, t.key_file, empty)
    with pytest.raises(
        SshError,
        match=r"host key not in known_hosts .*empty_known_hosts \(pinned; unknown keys are refused\)",
    ):
        RemoteAgent(bad).connect()


def test_ssh_run_survives_a_dropped_connection_and_reattaches(
    sshd: dict[str, Any], tmp_path: Path, pyz: Path
) -> None:
    require_tool("stress-ng")
    remote = tmp_path / "remote"
    plan = {
        "run_id": "ssh1",
        "host": "loopback",
        "sample_interval_s": 0.5,
        "suites": [{"suite": "cpu", "duration_s": 4}],
    }
    first = RemoteAgent(sshd["target"], str(remote))
    first.connect()
    first.ship(pyz)
    started = first.start(plan)
    assert started["attached"] is False and started["state"] == "running"
    pid = int(started["pid"])
    try:
        first.drop()  # the link dies mid-run, as a failing network would
        with pytest.raises(Exception):  # noqa: B017 - any paramiko/socket error: the channel is gone
            first.status("ssh1")
        first.close()
        time.sleep(0.5)
        assert Path(f"/proc/{pid}").exists()  # the detached agent carries on without its SSH session
        events: list[dict[str, Any]] = []
        agents: list[RemoteAgent] = []

        def factory(t: SshTarget) -> RemoteAgent:
            agents.append(RemoteAgent(t, str(remote)))
            return agents[-1]

        def on_event(event: dict[str, Any]) -> None:
            events.append(event)
            if event.get("event") == "suite_start" and len(agents) == 1:
                agents[0].drop()  # and once more while following: run_remote must reconnect

        got = run_remote(sshd["target"], pyz, plan, on_event, retry_wait_s=0.5, agent_factory=factory)
        result = got.result
        kinds = [e["event"] for e in events]
        assert kinds[0] == "attached" and events[0]["pid"] == pid  # not started twice
        assert "reconnecting" in kinds and len(agents) >= 2
        assert kinds.count("attached") >= 2 and "started" not in kinds
        assert kinds.count("suite_start") == 1 and kinds[-1] == "run_end", [
            e for e in events if e["event"] in ("reconnecting", "attached")
        ]
        assert result["run_id"] == "ssh1" and result["suites"][0]["suite"] == "cpu"
        assert result["suites"][0]["verdict"] in ("pass", "warn", "inconclusive")
        assert (remote / "runs" / "ssh1" / "result.json").is_file()
        # the telemetry comes back byte for byte, under the name the result gives it
        assert result["telemetry"] == "telemetry.jsonl"
        assert got.files == {"telemetry.jsonl": (remote / "runs" / "ssh1" / "telemetry.jsonl").read_bytes()}
    finally:
        stop_pid(pid)


def test_zipapp_runs_every_suite_on_python_3_9(tmp_path: Path, pyz: Path) -> None:
    """The agent's floor is Python 3.9: run the zipapp there for real when this machine has one.
    `make setup` finds one (PATH, pyenv) and writes its path into .venv/python3.9-path; looked at first."""
    import shutil

    recorded = REPO / ".venv" / "python3.9-path"
    found = [
        *([recorded.read_text().strip()] if recorded.is_file() else []),
        shutil.which("python3.9"),
        *map(str, Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")),
    ]
    probe = "import sys; sys.exit(sys.version_info[:2] != (3, 9))"
    working = [
        p
        for p in found
        if p and subprocess.run([p, "-c", probe], capture_output=True, check=False).returncode == 0
    ]
    if not working:
        pytest.skip(
            "python3.9 is not installed here: Debian 12 packages none; `make setup` takes pyenv's "
            "(or tries `pyenv install 3.9`) and records it in .venv/python3.9-path"
        )
    py39 = working[0]
    require_tool("stress-ng")
    mem = {"max_mib": 64, "triad_array_mib": 16, "triad_ntimes": 3, "memtester_instances": 1}
    suites = [
        {"suite": "cpu", "duration_s": 1},
        {"suite": "memory", "duration_s": 2, "options": mem},
        {"suite": "nvme", "duration_s": 1},
        {"suite": "boot_disks", "duration_s": 1},
        {"suite": "gpu", "duration_s": 1},
        {"suite": "soak", "duration_s": 1, "options": {"max_mib": 64}},
    ]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"run_id": "py39", "suites": suites}))
    r = subprocess.run(
        [py39, str(pyz), "run", str(plan), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"suite_crashed"' not in events
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert [s["suite"] for s in result["suites"]] == [s["suite"] for s in suites]
    assert result["suites"][0]["verdict"] == "pass"


def test_provision_burnin_host_over_ssh(sshd: dict[str, Any], profiles_copy: Path, tmp_path: Path) -> None:
    """The command end to end: catalog host -> plan with the profile's expectations -> zipapp over
    SFTP -> detached run -> result in the state store."""
    from provision.store.state import RunStatus, StateStore

    require_tool("stress-ng")
    t: SshTarget = sshd["target"]
    with open(profiles_copy / "hosts.yaml", "a") as fh:
        fh.write(
            "  - name: inferno-host-loopback\n    profile: circle-1-limbo\n    rack: circle-1-limbo\n"
            "    pdu: inferno-pdu-circle1-1\n    pdu_outlet: 2\n    boot_mac: '3c:ec:ef:10:02:10'\n"
            "    interfaces:\n      - {name: eth0, mac: '3c:ec:ef:10:02:10'}\n"
            f"    address: 127.0.0.1\n    ssh_port: {t.port}\n    ssh_user: {t.user}\n"
            "    bmc: {url: 'https://10.0.1.29', credentials: 'env:INFERNO_BMC_LOOPBACK'}\n"
        )
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"suites": [{"suite": "cpu", "duration_s": 2}]}))
    state = tmp_path / "state"
    with StateStore.open(state) as store:  # an earlier `provision inspect` of the host
        inspected = store.create_run("inferno-host-loopback", "inspect")
        store.put_document(inspected.id, "inventory-redfish.json", {"source": "redfish", "collected_at": 1.0})
        store.finish_run(inspected.id, RunStatus.succeeded)
    cli = [sys.executable, "-m", "provision", "--profiles", str(profiles_copy), "--state", str(state)]
    argv = [*cli, "burnin", "inferno-host-loopback", "--plan", str(plan), "--json"]
    argv += [
        "--identity",
        str(t.key_file),
        "--known-hosts",
        str(t.known_hosts),
        "--agent-dir",
        str(tmp_path / "remote"),
    ]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    # this VM is no Limbo (128 logical CPUs): a failed finding, exit 1, full JSON
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["host"] == "inferno-host-loopback" and doc["verdict"] == "fail"
    lc = next(f for f in doc["suites"][0]["findings"] if f["id"] == "logical_cpus:cpu")
    assert (lc["expected"], lc["verdict"]) == ("128", "fail")
    assert doc["plan"]["expect"]["memory"]["peak_bandwidth_gbs"] == 307.2
    with StateStore.open(state) as store:
        run = store.latest_run("inferno-host-loopback", "burnin")
        assert run is not None and run.id == doc["run_id"] and run.status is RunStatus.failed
        stored = {d.name: d for d in store.documents(run.id)}
        pre_os = [e.payload for e in store.events("inferno-host-loopback") if e.kind == "pre_os_inventory"]
    remote_run = tmp_path / "remote" / "runs" / doc["run_id"]
    assert (remote_run / "result.json").is_file()
    # The telemetry and both inventories are kept with the run, each with its digest.
    assert {"result.json", "telemetry.jsonl", "inventory.json", "inventory-redfish.json"} <= set(stored)
    telemetry = (remote_run / "telemetry.jsonl").read_bytes()
    assert stored["telemetry.jsonl"].sha256 == hashlib.sha256(telemetry).hexdigest()
    assert pre_os == [{"from_run": inspected.id}]
    # ... so the report reads the run's telemetry, as it does for a local run.
    r = subprocess.run(
        [*cli, "report", "inferno-host-loopback", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1, r.stderr  # rejected (the failed finding above): exit 0 only for accepted
    record = json.loads(r.stdout)
    assert record["telemetry"]["file"] == "telemetry.jsonl"
    samples = sum(1 for line in telemetry.splitlines() if b'"v"' in line)
    assert record["telemetry"]["samples"] == samples > 0 and record["telemetry"]["bad_lines"] == 0
    assert "cpu.mhz_avg" in {s["name"] for s in record["telemetry"]["series"]}
    assert record["inventory"]["pre_os"]["source"] == "redfish"
    raw = {x["path"]: x["sha256"] for x in record["raw"]}
    assert raw["telemetry.jsonl"] == stored["telemetry.jsonl"].sha256
