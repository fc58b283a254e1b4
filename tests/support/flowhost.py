"""One test host, end to end, on real parts: a sushy-emulator system as its BMC, the installer
stand-in watching it, a loopback sshd as the installed OS, and the `provision` controller run as a
real process (so a test can SIGKILL it and run it again).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.support.bmcrig import Emulator, emulator_argv, fake_systems
from tests.support.flowrig import write_profiles, write_tree
from tests.support.kubeapi import Kube, serving
from tests.support.machine_emulator import processors_of
from tests.support.machine_profile import agent_inventory, management_nic
from tests.support.procs import free_port, running, stop_pid, wait_for_port
from tests.support.sshd import Sshd, sshd_setup

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Controller:
    """What one `provision host` process printed and how it ended."""

    rc: int
    events: list[dict[str, object]]
    stderr: str

    def finished(self, outcome: str = "ok") -> list[str]:
        done = [e for e in self.events if e.get("event") == "step_finished" and e.get("outcome") == outcome]
        return [str(e["step"]) for e in done]

    @property
    def summary(self) -> dict[str, object]:
        rows = [e for e in self.events if e.get("event") == "summary"]
        hosts = rows[-1]["hosts"] if rows else [{}]
        return dict(hosts[0])  # type: ignore[index]


class Server:
    """A real server a test stops and starts again on the same port (a BMC outage, an sshd restart)."""

    def __init__(self, argv: list[str], log: Path, port: int) -> None:
        self.argv, self.log, self.port = argv, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc.pid)
            self.proc = None


@dataclass
class FlowHost:
    work: Path
    emu: Emulator
    ssh: Sshd
    profiles: Path
    state: Path
    boot_port: int
    installs: Path
    bmc: Server
    sshd: Server
    env: dict[str, str] = field(default_factory=dict)
    kube: Kube | None = None  # the test cluster the host joins (flow_host(join=True))

    def stop_bmc(self) -> None:
        self.bmc.stop()

    def start_bmc(self) -> None:
        self.bmc.start()

    @property
    def name(self) -> str:
        return self.emu.systems[0].name

    def argv(self, *args: str, command: str = "host") -> list[str]:
        return [
            sys.executable,
            "-m",
            "provision",
            "--profiles",
            str(self.profiles),
            "--state",
            str(self.state),
            command,
            self.name,
            "--json",
            "--plan",
            "quick",
            "--identity",
            str(self.ssh.client_key),
            "--agent-dir",
            str(self.work / "agent-on-host"),
            *args,
        ]

    def run(self, *args: str, command: str = "host", timeout_s: float = 240) -> Controller:
        proc = subprocess.run(
            self.argv(*args, command=command),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            timeout=timeout_s,
        )
        return Controller(proc.returncode, _events(proc.stdout), proc.stderr)

    def run_until(self, step: str | None, *args: str, timeout_s: float = 240) -> Controller:
        """Run the controller and SIGKILL it as soon as it reports `step` finished (None: as soon
        as it reports any step finished)."""
        proc = subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO,
            start_new_session=True,
        )
        events: list[dict[str, object]] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                events += _events(line)
                last = events[-1] if events else {}
                if last.get("event") == "step_finished" and step in (None, last.get("step")):
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            proc.wait(timeout=timeout_s)
        finally:
            stop_pid(proc.pid)
        err = proc.stderr.read() if proc.stderr else ""
        return Controller(proc.returncode if proc.returncode is not None else -9, events, err)

    def install_count(self) -> int:
        """Installs that began (posted `started`): each one rewrites the boot disks."""
        if not self.installs.exists():
            return 0
        records = [json.loads(x) for x in self.installs.read_text().splitlines() if x.strip()]
        return sum(1 for r in records if r.get("started_status") == 204)


def _events(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


@contextmanager
def flow_host(
    work: Path,
    name: str = "flow-node-1",
    fail_installs: int = 0,
    cpu_s: int = 2,
    compute: bool = False,
    accepted: bool = False,
    join: bool = False,
) -> Iterator[FlowHost]:
    """compute: the host is a compute-class server whose hardware (DIMMs, GPUs, drives) the BMC
    shows from a mockup tree at work/tree.json, which a test may edit to swap parts.
    accepted: the profile is what this machine is (tests.support.machine_profile), so the run can be
    accepted; the BMC's NIC carries the MAC of the NIC the OS sees.
    join: a test Kubernetes API server (tests.support.kubeapi) runs; the installer stand-in plays the
    RHCOS installer too, and its first boot asks to join as this host (its name, 127.0.0.1)."""
    with ExitStack() as stack:
        systems = fake_systems([name])
        machine = agent_inventory() if accepted else None
        if machine is not None:
            systems = [replace(s, mac=management_nic(machine)["mac"]) for s in systems]
        bmc_port = free_port()
        emu = Emulator(f"http://127.0.0.1:{bmc_port}", work / "bmc" / "emulator.log", systems)
        argv, ssh = sshd_setup(work / "sshd")
        boot_port = free_port()
        profiles = write_profiles(
            work / "profiles",
            emu,
            boot_port,
            ssh.port,
            ssh.user,
            cpu_s=cpu_s,
            compute=compute,
            machine=machine,
        )
        tree = write_tree(profiles, name, work / "tree.json") if compute else None
        bmc_argv = emulator_argv(work / "bmc", systems, bmc_port, tree=tree)
        if machine is not None:  # the BMC shows this machine's CPUs (tests.support.machine_emulator)
            cpus = work / "bmc" / "processors.json"
            cpus.write_text(json.dumps(processors_of(machine)))
            bmc_argv[2] = "tests.support.machine_emulator"
            bmc_argv += ["--processors", str(cpus)]
        bmc = Server(bmc_argv, emu.log, bmc_port)
        stack.callback(bmc.stop)
        bmc.start()
        sshd_server = Server(argv, ssh.log, ssh.port)
        stack.callback(sshd_server.stop)
        sshd_server.start()
        state = work / "state"
        installs = work / "installs.jsonl"
        system = emu.systems[0]
        installer = [
            sys.executable,
            "-m",
            "tests.support.installer",
            "--bmc",
            emu.url,
            "--system",
            system.path,
            "--ipxe-url-file",
            str(state / "netboot" / f"{name}.url"),
            "--host-keys",
            str(ssh.host_pub),
            "--record",
            str(installs),
            "--fail-installs",
            str(fail_installs),
        ]
        kube = None
        if join:
            (work / "kube").mkdir(parents=True, exist_ok=True)
            kube = stack.enter_context(serving(work / "kube", {}))
            entry = {"node": name, "dns_names": [name], "addresses": ["127.0.0.1"]}
            (work / "join.json").write_text(json.dumps(entry))
            installer += ["--kube-url", f"http://127.0.0.1:{kube.port}", "--kube-token", "s3cret-token"]
            installer += ["--join-file", str(work / "join.json")]
        stack.enter_context(running(installer, log=work / "installer.log", cwd=REPO))
        env = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}
        yield FlowHost(work, emu, ssh, profiles, state, boot_port, installs, bmc, sshd_server, env, kube)
