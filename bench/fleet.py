"""Fleet benchmark: what `provision host --all` costs the controller per host, for 1, 50 and 200 hosts.

What runs for real, per host: inspection over Redfish, the kickstart render, the boot server run
and token, the one-time PXE boot and power cycle (sushy-emulator, fake driver: one emulator holding
every host's system, power changes landing ~1 s after they are asked for; its state file is closed
after each access, see tests/support/lean_emulator.py), the install callbacks
over HTTP into the controller's embedded boot server, and the next-boot-from-disk. Each host's run
is journaled in the SQLite state store like any run.

Stand-ins, because they take real install time or a real host: the installer is one thread in this
benchmark process for all hosts (it reads the emulator's own state file to see a host powered on
with PXE, then fetches the iPXE script and kickstart with the run's token and posts `started` and
`finished`, as the kickstart would); the steps after the install (wait_ssh, start/follow the
burn-in, collect, validate, report, handoff) are replaced by no-ops in the controller, so the
figures are the controller's cost of driving BMCs and installs, not of burn-ins.

Measured: wall time of the controller process, its CPU time (user + system) and peak RSS (from
wait4), and the Redfish requests the emulator answered (its access log), per host.

Run: .venv/bin/python -m bench.fleet [N ...]   (default: 1 50 200; --parallel P, default 50)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from tests.support.bmcrig import Emulator, emulator_argv, fake_systems
from tests.support.flowrig import write_profiles
from tests.support.procs import free_port, running, stop_pid

REPO = Path(__file__).resolve().parent.parent
KS_URL = re.compile(r"inst\.ks=(\S+)")
BEARER = re.compile(r"Authorization: Bearer ([A-Za-z0-9_\-]+)")
CALLBACK = re.compile(r"(https?://\S+/callback/[A-Za-z0-9._-]+)/started")
REQUEST = re.compile(r'"(?:GET|POST|PATCH|PUT|DELETE) /redfish/v1/')


class Installers(threading.Thread):
    """Every host's installer stand-in, watching the emulator's state file (no Redfish traffic)."""

    def __init__(self, db: Path, netboot: Path, host_key: str, names: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.db, self.netboot, self.host_key, self.names = db, netboot, host_key, names
        self.stop = threading.Event()
        self.installs = 0
        self.retries = 0  # connections refused or reset by the boot server, tried again
        self._count = threading.Lock()
        self._last: dict[str, str] = {}

    def _states(self) -> dict[str, dict[str, object]]:
        if not self.db.exists():
            return {}
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("select key, value from cache").fetchall()
        return {pickle.loads(k): pickle.loads(v) for k, v in rows}

    def _call(self, method: str, url: str, **kwargs: object) -> requests.Response:
        """Like the kickstart's curl with --retry: a refused or reset connection is tried again.
        (The boot server's listen backlog is the socketserver default of 5: a burst of a few
        hundred installers gets resets.)"""
        for _ in range(9):
            try:
                return requests.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]
            except requests.ConnectionError:
                with self._count:
                    self.retries += 1
                time.sleep(1)
        return requests.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def _install(self, host: str) -> None:
        url = (self.netboot / f"{host}.url").read_text().strip()
        script = self._call("GET", url).text
        m = KS_URL.search(script)
        if m is None:
            return
        ks = self._call("GET", m.group(1)).text
        token, cb = BEARER.search(ks), CALLBACK.search(ks)
        if not token or not cb:
            return
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        self._call("POST", f"{cb.group(1)}/started", data="started", headers=headers)
        self._call("POST", f"{cb.group(1)}/finished", data=self.host_key, headers=headers)
        with self._count:
            self.installs += 1

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                states = self._states()
            except sqlite3.Error:
                continue
            for uuid, st in states.items():
                power, boot = str(st.get("power_state")), str(st.get("boot_device", "Hdd"))
                if self._last.get(uuid) == "Off" and power == "On" and boot == "Pxe":
                    threading.Thread(target=self._install, args=(self.names[uuid],), daemon=True).start()
                self._last[uuid] = power


CONTROLLER = """
import sys
from pathlib import Path
from provision.cli.app import App
from provision.flow.steps import build_steps
from provision.cli.launch import LaunchOptions, launch
from provision.flow.engine import StepName, StepResult

STAND_IN = ("wait_ssh", "start_burnin", "follow_burnin", "collect", "validate", "report", "handoff")

def steps(*args):
    real = build_steps(*args)
    for name in STAND_IN:
        real[StepName(name)] = lambda call: StepResult(message="bench stand-in", skipped=True)
    return real

profiles, state, parallel, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
app = App(profiles_dir=Path(profiles), state_dir=Path(state))
opts = LaunchOptions(parallel=parallel, as_json=True, log_dir=Path(state) / "logs", plan="quick")
launch(app, names, opts, steps, fleet=True)
"""


def measure(n: int, parallel: int, work: Path) -> dict[str, object]:
    names = [f"bench-node-{i:03d}" for i in range(n)]
    systems = fake_systems(names)
    port = free_port()
    log = work / "bmc" / "emulator.log"
    emu = Emulator(f"http://127.0.0.1:{port}", log, systems)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "hostkey")], check=True)
    host_key = (work / "hostkey.pub").read_text()
    profiles = write_profiles(work / "profiles", emu, free_port())
    state = work / "state"
    env = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}
    with running(
        emulator_argv(work / "bmc", systems, port, lean=True),
        log=log,
        port=port,
        cwd=REPO,
        ready_timeout_s=60,
    ):
        installers = Installers(
            work / "bmc" / "emulator-state" / "fakedriver.sqlite",
            state / "netboot",
            host_key,
            {s.uuid: s.name for s in systems},
        )
        installers.start()
        before = len(REQUEST.findall(log.read_text(errors="replace")))
        start = time.monotonic()
        with open(work / "controller.out", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", CONTROLLER, str(profiles), str(state), str(parallel), *names],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                stop_pid(proc.pid)
        wall = time.monotonic() - start
        installers.stop.set()
        text = log.read_text(errors="replace")
        requests_total = len(REQUEST.findall(text)) - before
        kinds: dict[str, int] = {}
        for m in re.finditer(r'"(GET|POST|PATCH|PUT|DELETE) (/redfish/v1/\S*)', text):
            kind = m.group(1) + " " + re.sub(r"[0-9a-f-]{36}", "{id}", m.group(2))
            kinds[kind] = kinds.get(kind, 0) + 1
    lines = (work / "controller.out").read_text().splitlines()
    summary = json.loads(next(x for x in reversed(lines) if '"summary"' in x))["hosts"]
    ok = sum(1 for r in summary if r["outcome"] == "ok")
    return {
        "hosts": n,
        "parallel": min(parallel, n),
        "ok": ok,
        "installs": installers.installs,
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "cpu_s_per_host": round((usage.ru_utime + usage.ru_stime) / n, 3),
        "wall_s_per_host": round(wall / n, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "redfish_requests_per_host": round(requests_total / n, 1),
        "callback_retries": installers.retries,
        "top_requests_per_host": {
            k: round(v / n, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:4]
        },
    }


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the emulator and the controller are stopped by PID


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="*", type=int, default=[1, 50, 200])
    p.add_argument("--parallel", type=int, default=50)
    args = p.parse_args()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-fleet-{n}-") as tmp:
            rows.append(measure(n, args.parallel, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    cols = [c for c in rows[0] if c != "top_requests_per_host"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
