"""Fleet benchmark: what `provision host --all` costs the controller per host, for 1, 50, 200 (1000) hosts.

What runs for real, per host: inspection over Redfish, the kickstart render, the boot server run
and token, the one-time PXE boot and power cycle, the install callbacks over HTTP into the
controller's embedded boot server, and the next-boot-from-disk, under the fleet admission of
provision/flow/admission.py with every host in flight at once. Each host's run is journaled in the
SQLite state store like any run.

The BMCs: several emulator processes AND a lean emulator. sushy-emulator (fake driver) processes of
--per-emulator systems each (default 8), made lean by tests/support/lean_emulator.py: power changes
land ~1 s after they are asked for, and the fake driver's state file stays open on one connection
per process (stock sushy-tools opens a connection per state access, ten per System GET, and leaves
it open, which runs out of descriptors at 200 hosts; opening and closing each cost ~6 ms of CPU per
request; one kept open, ~1 ms alone and 3-4 ms in a fleet). Spreading the systems
keeps each emulator process small: one process answering hundreds of systems was the bottleneck
before, and the inspection of a system on a shared BMC also reads its sibling Systems and Managers
(N per host on an N-system emulator). Every
emulated system stands for a host with a BMC of its own, so the per-BMC admission limit is set to the
systems one emulator serves, and installs and agent pushes are not limited.

Stand-ins, because they take real install time or a real host: the installer is one thread per
emulator in this benchmark process (tests/support/fleet_installer.py: it reads the emulator's state
file to see a host powered on with PXE, then fetches the iPXE script and kickstart with the run's
token and posts `started` and `finished`, as the kickstart would); the steps after the install
(wait_ssh, start/follow the burn-in, collect, validate, report, handoff) are no-ops in the controller,
so the figures are the controller's cost of driving BMCs and installs, not of burn-ins.

Measured: wall time of the controller process, its CPU time (user + system) and peak RSS (from
wait4), the emulators' and the installer threads' CPU over the same span (to tell whether this
machine's cores, not the controller, set the wall time), and the Redfish requests the emulators
answered (their access logs), per host.

Run: .venv/bin/python -m bench.fleet [N ...]   (default: 1 50 200; --parallel P: hosts in flight
at most, default all; --per-emulator K; --profile DIR: the controller's CPU per function, every
thread, into DIR/controller-N.pstats, read with `python -m pstats`; it slows the run ~4x;
--installs K: installs at once, as the site's `limits.installs`, default not limited)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

from tests.support.bmcrig import Emulator, FakeSystem, emulator_argv, fake_systems
from tests.support.fleet_installer import Installers
from tests.support.flowrig import write_profiles
from tests.support.procs import free_port, running, stop_pid

REPO = Path(__file__).resolve().parent.parent
REQUEST = re.compile(r'"(?:GET|POST|PATCH|PUT|DELETE) /redfish/v1/')


CONTROLLER = """
import json, sys
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

profiles, state, parallel, limits, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
app = App(profiles_dir=Path(profiles), state_dir=Path(state))
opts = LaunchOptions(
    parallel=int(parallel) or None,
    limits=json.loads(limits),
    as_json=True,
    log_dir=Path(state) / "logs",
    plan="quick",
)
launch(app, names, opts, steps, fleet=True)
"""

# Prepended to CONTROLLER by --profile: a cProfile per thread timed by that thread's CPU clock (so a
# thread waiting for the GIL, a lock or a socket costs nothing), merged into one pstats file at exit.
PROFILED = """
import atexit, cProfile, pstats, sys, threading, time
_profiles = [cProfile.Profile(time.thread_time)]
def _boot(frame, event, arg):
    p = cProfile.Profile(time.thread_time)
    _profiles.append(p)
    p.enable()
threading.setprofile(_boot)
_profiles[0].enable()
_out = sys.argv.pop(1)
def _dump():
    _profiles[0].disable()
    stats = pstats.Stats(_profiles[0])
    for p in _profiles[1:]:
        try:
            stats.add(p)
        except TypeError:  # a thread that never returned to a profiled frame
            pass
    stats.dump_stats(_out)
atexit.register(_dump)
"""


def _split(items: list[FakeSystem], parts: int) -> list[list[FakeSystem]]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def _count(logs: list[Path]) -> tuple[int, dict[str, int]]:
    total = 0
    kinds: dict[str, int] = {}
    for log in logs:
        text = log.read_text(errors="replace")
        total += len(REQUEST.findall(text))
        for m in re.finditer(r'"(GET|POST|PATCH|PUT|DELETE) (/redfish/v1/\S*)', text):
            kind = m.group(1) + " " + re.sub(r"[0-9a-f-]{36}", "{id}", m.group(2))
            kinds[kind] = kinds.get(kind, 0) + 1
    return total, kinds


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    n: int,
    parallel: int | None,
    per_emulator: int,
    work: Path,
    profile: Path | None = None,
    installs: int | None = None,
) -> dict[str, object]:
    """One fleet of n hosts, its systems spread over lean emulator processes of `per_emulator`
    systems each; every emulated system stands for a host with a BMC of its own, so the per-BMC
    limit is lifted to the systems one emulator process (one address) serves."""
    names = [f"bench-node-{i:04d}" for i in range(n)]
    systems = fake_systems(names)
    groups = _split(systems, max(1, -(-n // per_emulator)))
    ports = [free_port() for _ in groups]
    emus = [
        Emulator(f"http://127.0.0.1:{port}", work / f"bmc{i}" / "emulator.log", group)
        for i, (port, group) in enumerate(zip(ports, groups, strict=True))
    ]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "hostkey")], check=True)
    host_key = (work / "hostkey.pub").read_text()
    profiles = write_profiles(work / "profiles", Emulator(emus[0].url, emus[0].log, systems), free_port())
    url_of = {s.name: e.url for e in emus for s in e.systems}
    inventory = yaml.safe_load((profiles / "hosts.yaml").read_text())
    for h in inventory["hosts"]:
        h["bmc"]["url"] = url_of[h["name"]]
    (profiles / "hosts.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    state = work / "state"
    env = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}
    limits = {"bmc_requests": max(len(g) for g in groups), "installs": installs or n, "agent_pushes": n}
    with ExitStack() as stack:
        installers = []
        pids = []
        for i, (port, emu) in enumerate(zip(ports, emus, strict=True)):
            argv = emulator_argv(work / f"bmc{i}", emu.systems, port, lean=True)
            pids.append(
                stack.enter_context(running(argv, log=emu.log, port=port, cwd=REPO, ready_timeout_s=60)).pid
            )
            inst = Installers(
                work / f"bmc{i}" / "emulator-state" / "fakedriver.sqlite",
                state / "netboot",
                host_key,
                {s.uuid: s.name for s in emu.systems},
            )
            inst.start()
            stack.callback(inst.stop.set)
            installers.append(inst)
        before, _ = _count([e.log for e in emus])
        emulators_before, self_before = _cpu_s(pids), _self_cpu_s()
        start = time.monotonic()
        with open(work / "controller.out", "w") as out:
            argv = [sys.executable, "-c", CONTROLLER, str(profiles), str(state), str(parallel or 0)]
            if profile is not None:  # every thread's CPU time, per function (cProfile, thread_time)
                profile.mkdir(parents=True, exist_ok=True)
                argv = [
                    sys.executable,
                    "-c",
                    PROFILED + CONTROLLER,
                    str(profile / f"controller-{n}.pstats"),
                    *argv[3:],
                ]
            proc = subprocess.Popen(
                [*argv, json.dumps(limits), *names], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                stop_pid(proc.pid)
        wall = time.monotonic() - start
        emulators_cpu, installers_cpu = _cpu_s(pids) - emulators_before, _self_cpu_s() - self_before
        requests_total, kinds = _count([e.log for e in emus])
        requests_total -= before
    lines = (work / "controller.out").read_text().splitlines()
    summary = json.loads(next(x for x in reversed(lines) if '"summary"' in x))["hosts"]
    ok = sum(1 for r in summary if r["outcome"] == "ok")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "hosts": n,
        "ok": ok,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "redfish_requests_per_host": round(requests_total / n, 1),
        "parallel": parallel or n,
        "emulators": len(emus),
        "installs": sum(i.installs for i in installers),
        "installs_at_once": installs or n,
        "exit": os.waitstatus_to_exitcode(status),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_host": round(cpu / n, 3),
        "emulators_cpu_s": round(emulators_cpu, 1),
        "installers_cpu_s": round(installers_cpu, 1),
        "callback_retries": sum(i.retries for i in installers),
        "installer_timeouts": sum(i.gave_up for i in installers),
        "top_requests_per_host": {
            k: round(v / n, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]
        },
    }


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: the emulators and the controller are stopped by PID


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="*", type=int, default=[1, 50, 200])
    p.add_argument("--parallel", type=int, help="hosts in flight at most [default: all]")
    p.add_argument("--per-emulator", type=int, default=8, help="systems per emulator process")
    p.add_argument("--profile", type=Path, help="profile the controller's CPU per function into DIR")
    p.add_argument(
        "--installs", type=int, help="installs at once (the site's `limits.installs`) [default: not limited]"
    )
    args = p.parse_args()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-fleet-{n}-") as tmp:
            rows.append(measure(n, args.parallel, args.per_emulator, Path(tmp), args.profile, args.installs))
        if len(rows) > 1:
            ratio = float(str(rows[-1]["wall_s"])) / float(str(rows[0]["wall_s"]))
            rows[-1]["wall_ratio_to_first"] = round(ratio, 2)
        print(json.dumps(rows[-1]), flush=True)
    cols = [c for c in rows[-1] if c != "top_requests_per_host"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "-")) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
