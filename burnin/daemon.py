"""Adapter: detached runs. `start` double-forks a runner into its own session (it outlives the SSH
session that started it) and writes agent.pid; a second `start` of the same run re-attaches
(reports its status) instead of starting it twice. `status`, `follow` and `collect` read the run
directory only, so any later connection can pick the run up again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

from burnin.runner import EVENTS, RESULT, Runner, write_json_atomic

PIDFILE = "agent.pid"


def _starttime(pid: int) -> Optional[str]:
    """Field 22 of /proc/PID/stat: tells a live run from a recycled PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(info: Dict[str, Any]) -> bool:
    pid = int(info.get("pid", 0))
    if pid <= 0:
        return False
    st = _starttime(pid)
    if st is None or st != info.get("starttime"):
        return False
    return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:1]


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_events(run_dir: Path, skip: int = 0) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, event) for complete lines after the first `skip`."""
    try:
        fh = open(run_dir / EVENTS)  # noqa: SIM115 - closed by the `with` below; open may fail
    except OSError:
        return
    with fh:
        for i, line in enumerate(fh):
            if i < skip or not line.endswith("\n"):
                continue
            try:
                yield i + 1, json.loads(line)
            except ValueError:
                continue


def status(run_dir: Path) -> Dict[str, Any]:
    info = _read_json(run_dir / PIDFILE) or {}
    result = _read_json(run_dir / RESULT) or {}
    plan = _read_json(run_dir / "plan.json") or {}
    done = [s["suite"] for s in result.get("suites", [])]
    current = None
    events = 0
    for n, ev in read_events(run_dir):
        events = n
        if ev.get("event") == "suite_start":
            current = ev.get("suite")
        elif ev.get("event") == "suite_end":
            current = None
    if result.get("ended_at"):
        state = "finished"
    elif info and _alive(info):
        state = "running"
    elif info or result:
        state = "dead"  # the runner went away before writing its final result
    else:
        state = "absent"
    verdict = None
    if state == "finished":
        order = ["fail", "inconclusive", "warn", "pass"]
        verdicts = [s["verdict"] for s in result.get("suites", [])]
        verdict = next((v for v in order if v in verdicts), "inconclusive")
    return {
        "run_id": plan.get("run_id") or result.get("run_id"),
        "run_dir": str(run_dir),
        "state": state,
        "pid": info.get("pid"),
        "current_suite": current,
        "suites_done": done,
        "suites_planned": [s.get("suite") for s in plan.get("suites", [])],
        "events": events,
        "verdict": verdict,
    }


def _detach(plan: Dict[str, Any], run_dir: Path, ready_w: int) -> None:
    """In the grandchild: a session of its own, no terminal, output to agent.log; then run."""
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    # Keep nothing of the caller's: an inherited pipe would hold an SSH channel open, an inherited
    # start lock would block the next `start` for the whole run.
    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
        if fd > 2 and fd != ready_w:
            with contextlib.suppress(OSError):
                os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    logfd = os.open(str(run_dir / "agent.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    for fd in (devnull, logfd):
        os.close(fd)
    code = 1
    try:
        runner = Runner(plan, run_dir)
        signal.signal(signal.SIGTERM, lambda *_: runner.stop.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        write_json_atomic(
            run_dir / PIDFILE,
            {"pid": os.getpid(), "starttime": _starttime(os.getpid()), "run_id": plan["run_id"]},
        )
        os.write(ready_w, b"ok")
        os.close(ready_w)
        runner.run()
        code = 0
    except BaseException as exc:  # the daemon's last word goes to agent.log
        sys.stderr.write(f"burnin agent: run failed: {exc!r}\n")
    finally:
        sys.stderr.flush()
        os._exit(code)


def start(plan: Dict[str, Any], run_dir: Path, wait_s: float = 20.0) -> Dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two starts at once: the second sees the first's pid file
        current = status(run_dir)
        if current["state"] in ("running", "finished"):
            return dict(current, attached=True)
        if current["state"] == "dead":
            raise RuntimeError(f"run {run_dir} exists but its agent is gone; collect it or use a new run_id")
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _detach(plan, run_dir, ready_w)
        os.close(ready_w)
        os.waitpid(pid, 0)
        deadline = time.monotonic() + wait_s
        got = b""
        while time.monotonic() < deadline and not got:
            got = os.read(ready_r, 2)
        os.close(ready_r)
    return dict(status(run_dir), attached=False, started=got == b"ok")


def follow(run_dir: Path, skip: int = 0, timeout_s: float = 0, out: Any = None) -> int:
    """Print each event line after the first `skip` as it is written; stop at run_end (exit 0) or
    after timeout_s (exit 124) or when the agent died (exit 3)."""
    out = out or sys.stdout
    deadline = time.monotonic() + timeout_s if timeout_s else None
    seen = skip
    while True:
        for n, ev in read_events(run_dir, seen):
            seen = n
            out.write(json.dumps(dict(ev, line=n)) + "\n")
            out.flush()
            if ev.get("event") == "run_end":
                return 0
        state = status(run_dir)["state"]
        if state in ("dead", "absent", "finished"):
            return 0 if state == "finished" else 3
        if deadline is not None and time.monotonic() > deadline:
            return 124
        time.sleep(0.5)


def stop(run_dir: Path) -> bool:
    info = _read_json(run_dir / PIDFILE) or {}
    if not _alive(info):
        return False
    os.kill(int(info["pid"]), signal.SIGTERM)
    return True
