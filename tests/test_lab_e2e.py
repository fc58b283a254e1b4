"""End to end on the lab: real VMs (QEMU TCG, OVMF and SeaBIOS), a real BMC (sushy-emulator over
libvirt, TLS + basic auth) driven by the project's Redfish adapter, real DHCP/TFTP (dnsmasq), the
project's boot server (`provision serve`) with per-run tokens, and the installer stand-in writing
the Debian image, all in namespaces this test creates. Every process the lab starts is stopped by
PID, and the module checks none is left, even when a test fails.

The first tests play the flow's part with its own modules (the run and its token, the iPXE URL
published for the DHCP side, PXE and power through provision.bmc.redfish, the install callbacks), so
each boot-chain fact is asserted on its own; `test_provision_host_killed_mid_install_resumes_to_accepted`
then runs `provision host lab-node-1` itself, through every step to an accepted verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest
import requests

from provision.bmc.boot_override import BootDevice, BootMode, BootRequest, set_boot
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import connect
from provision.lab import libvirtd, system
from provision.lab.artifacts import default_cache_dir
from provision.lab.lab import Lab, down, nodes_of, open_lab, up
from provision.lab.ledger import load
from provision.lab.spec import Firmware, LabNode, node
from provision.model.catalog import load_catalog
from provision.store.state import RunStatus, StateStore
from tests.conftest import require_tool
from tests.support.netns import in_netns

# the first run on a machine builds the Debian image (~3 min) inside the first test's fixture
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parent.parent
LAB_ID = f"e{os.getpid() % 10_000_000}"
BOOT_PORT = 8080
INSTALL_TIMEOUT_S = 480.0
SSH_TIMEOUT_S = 300.0
TOOLS = ("qemu-system-x86_64", "qemu-img", "libvirtd", "virtlogd", "virsh",
         "dnsmasq", "unshare", "ip", "zstd")  # fmt: skip


@dataclass
class Rig:
    lab: Lab
    state: Path
    boot_log: Path
    operator_key: Path
    seen_pids: list[tuple[int, str]] = field(default_factory=list)

    @property
    def srv(self) -> str:
        return self.lab.net.srv_ns

    def dnsmasq_log(self) -> str:
        return (self.lab.logs / "dnsmasq.log").read_text(errors="replace")

    def note_qemu(self) -> None:
        for n in nodes_of(load(self.lab.root / "lab.json")):
            pid = libvirtd.domain_pid(self.lab.libvirt, n.name)
            if pid is not None and (pid, "qemu-system") not in self.seen_pids:
                self.seen_pids.append((pid, "qemu-system"))


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, bridges, libvirtd)")
    for tool in TOOLS:
        require_tool(tool)
    if not (default_cache_dir() / "debian-lab.img.zst").exists():
        require_tool("debootstrap")  # the first `lab up` on a machine builds the image (~3 min)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    _require()
    state = tmp_path_factory.mktemp("labstate")
    the_lab = open_lab(state, LAB_ID)
    r = Rig(the_lab, state, state / "serve.log", the_lab.operator_key)
    boot_pid = 0
    try:
        # Owned by this session: killed with SIGKILL (no teardown), the lab is reaped by the next `up`.
        up(the_lab, cache=default_cache_dir(), owned=True)
        ledger = load(the_lab.root / "lab.json")
        assert ledger is not None
        r.seen_pids += [(p.pid, p.program) for p in ledger.procs]
        env = dict(os.environ, PROVISION_PROFILES=str(the_lab.profiles), PROVISION_STATE=str(state))
        serve = Path(sys.executable).parent / "provision"
        listen = f"{the_lab.net.server_ip}:{BOOT_PORT}"
        boot_pid = system.spawn(
            [str(serve), "serve", "--listen", listen], log=r.boot_log, netns=r.srv, env=env
        )
        r.seen_pids.append((boot_pid, "provision"))
        yield r
    finally:
        r.note_qemu() if (the_lab.root / "lab.json").exists() else None
        if boot_pid:
            system.stop(boot_pid, "provision")
        down(the_lab)
        left = [(pid, prog) for pid, prog in r.seen_pids if system.is_ours(pid, prog)]
        netns = system.run(["ip", "netns", "list"], check=False)
        assert not left, f"processes the lab started are still running: {left}"
        assert the_lab.net.srv_ns not in netns and the_lab.net.rack_ns not in netns


# -- the BMC, through the project's Redfish adapter --------------------------------------------
def _host(rig: Rig, n: LabNode) -> Any:
    return load_catalog(rig.lab.profiles).host(n.name)


def _mode(n: LabNode) -> BootMode:
    return BootMode.uefi if n.firmware is Firmware.uefi else BootMode.legacy


def _boot_and_power(rig: Rig, n: LabNode, device: BootDevice, action: PowerAction | None) -> str | None:
    host = _host(rig, n)

    def go() -> str | None:
        with connect(host.bmc) as bmc:
            set_boot(bmc, BootRequest(device, mode=_mode(n)))
            return set_power(bmc, action, 90).state if action else None

    return in_netns(rig.srv, go)


def _power(rig: Rig, n: LabNode, action: PowerAction = PowerAction.status) -> str | None:
    host = _host(rig, n)

    def go() -> str | None:
        with connect(host.bmc) as bmc:
            return set_power(bmc, action, 90).state

    return in_netns(rig.srv, go)


# -- runs and callbacks: what `provision host` does around the install ----------------------------
def _open_run(rig: Rig, n: LabNode) -> str:
    """A run, its token, and the iPXE URL with the token published for the DHCP side."""
    with StateStore.open(rig.state) as store:
        run = store.create_run(n.name, "provision")
        token = store.issue_token(run.id, n.name, INSTALL_TIMEOUT_S + SSH_TIMEOUT_S)
    url = f"http://{rig.lab.net.server_ip}:{BOOT_PORT}/ipxe/{n.name}?token={token}"
    rig.lab.netboot.mkdir(parents=True, exist_ok=True)
    fd = os.open(rig.lab.netboot / f"{n.name}.url", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(url + "\n")
    conf = rig.lab.root / "dnsmasq.conf"
    _wait(f"{n.name}: dnsmasq restarted with the published URL", 30, lambda: url in conf.read_text(), rig)
    return run.id


def _wait(what: str, timeout_s: float, probe: Callable[[], Any], rig: Rig) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rig.note_qemu()
        got = probe()
        if got:
            return got
        time.sleep(2)
    pytest.fail(
        f"{what}: nothing within {timeout_s:.0f} s; boot server log tail: "
        f"{rig.boot_log.read_text(errors='replace')[-800:]}"
    )


def _wait_installed(rig: Rig, n: LabNode, run_id: str) -> list[str]:
    def ended() -> list[Any] | None:
        with StateStore.open(rig.state) as store:
            seen = [e for e in store.events(host=n.name, run_id=run_id) if e.kind.startswith("install.")]
        return seen if any(e.kind in ("install.finished", "install.failed") for e in seen) else None

    events = _wait(f"{n.name}: installer callback", INSTALL_TIMEOUT_S, ended, rig)
    (rig.lab.netboot / f"{n.name}.url").unlink(missing_ok=True)
    with StateStore.open(rig.state) as store:  # closed, so `provision host` later opens its own run
        store.finish_run(run_id, RunStatus.succeeded)
    kinds = [e.kind for e in events]
    assert kinds == ["install.started", "install.finished"], [(e.kind, e.payload) for e in events]
    keys = [f"{k['type']} {k['key']}" for k in events[-1].payload["host_keys"]]
    assert any(k.startswith("ssh-ed25519 ") for k in keys), keys
    return keys


def _ssh(
    rig: Rig, n: LabNode, host_keys: list[str], cmds: list[str], timeout_s: float = SSH_TIMEOUT_S
) -> list[str]:
    """Log in with the pinned keys only (RejectPolicy) and run each command; their stdout."""
    address = f"{rig.lab.net.subnet}.{n.ipv4}"
    known = rig.state / f"known_hosts.{n.name}"
    known.write_text("".join(f"{address} {k}\n" for k in host_keys))

    def attempt() -> list[str] | None:
        client = paramiko.SSHClient()
        client.load_host_keys(str(known))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                address,
                username="inferno",
                key_filename=str(rig.operator_key),
                look_for_keys=False,
                allow_agent=False,
                timeout=5,
                banner_timeout=10,
            )
        except paramiko.BadHostKeyException:
            raise  # a wrong key is an answer, not "still booting"
        except (OSError, EOFError, paramiko.SSHException):
            # sshd still starting on a loaded machine: refused, reset, or "No existing session"
            return None
        try:
            outs = []
            for cmd in cmds:
                _, out, err = client.exec_command(cmd, timeout=60)
                rc = out.channel.recv_exit_status()
                assert rc == 0, f"{cmd}: exit {rc}: {err.read().decode()}"
                outs.append(out.read().decode())
            return outs
        finally:
            client.close()

    outs: list[str] = _wait(
        f"{n.name}: SSH with the pinned host key", timeout_s, lambda: in_netns(rig.srv, attempt), rig
    )
    return outs


INVENTORY_CMDS = [
    "hostname",
    "cat /etc/inferno/installer",
    "lscpu -J",
    "sudo dmidecode -t 17",
    "sudo dmidecode -s system-serial-number",
    "sudo nvme list -o json",
    "lsblk -J -b -d -o NAME,SERIAL,SIZE,TRAN",
]


def _check_hardware(outs: list[str], n: LabNode) -> None:
    """What the installed OS sees is what the lab-vm profile and the lab's VM definition say."""
    profile = load_catalog(REPO / "profiles-lab").profiles["lab-vm"]
    hostname, installer, lscpu, dimms, system_serial, nvme, lsblk = outs
    assert hostname.strip() == n.name
    assert "stand-in" in installer
    cpu = {f["field"].rstrip(":"): f["data"] for f in json.loads(lscpu)["lscpu"]}
    assert cpu["Model name"] == profile.cpu.model
    assert cpu["Vendor ID"] == profile.cpu.vendor
    assert int(cpu["CPU family"]) == profile.cpu.cpuid_family
    assert int(cpu["CPU(s)"]) == profile.cpu.logical_cpus
    assert f"Serial Number: {n.dimms[0].serial}" in dimms
    assert f"Part Number: {profile.memory.part_number}" in dimms
    assert f"Speed: {profile.memory.rated_mts} MT/s" in dimms
    assert system_serial.strip() == n.system_serial
    devices = json.loads(nvme)["Devices"]
    assert [(d["SerialNumber"].strip(), d["PhysicalSize"]) for d in devices] == [
        (d.serial, d.size_bytes) for d in n.nvme
    ]
    disks = {d["serial"]: d for d in json.loads(lsblk)["blockdevices"] if d.get("serial")}
    for d in n.boot_disks:
        assert disks[d.serial]["tran"] == "sata" and int(disks[d.serial]["size"]) == d.size_bytes


# -- the tests ------------------------------------------------------------------------------------
def test_bios_and_uefi_hosts_install_in_parallel_and_answer_ssh_on_pinned_keys(rig: Rig) -> None:
    uefi, bios = node("lab-node-1"), node("lab-node-2")
    # the BMC: TLS against the lab's own CA, and nothing without credentials
    ca = str(rig.lab.root / "bmc" / "ca.pem")

    def anonymous() -> int:
        with requests.Session() as s:
            s.trust_env = False
            return s.get(f"{rig.lab.bmc_url}/redfish/v1/Systems", verify=ca, timeout=10).status_code

    assert in_netns(rig.srv, anonymous) == 401
    assert _power(rig, uefi) == "Off" and _power(rig, bios) == "Off"
    runs = {}
    for n in (uefi, bios):
        runs[n.name] = _open_run(rig, n)
        assert _boot_and_power(rig, n, BootDevice.pxe, PowerAction.on) == "On"
    keys = {n.name: _wait_installed(rig, n, runs[n.name]) for n in (uefi, bios)}
    log = rig.dnsmasq_log()
    # UEFI: the firmware's own PXE client fetched iPXE over TFTP; BIOS: the NIC's iPXE ROM needed none
    assert f"snponly.efi to {rig.lab.net.subnet}.{uefi.ipv4}" in log
    assert f"to {rig.lab.net.subnet}.{bios.ipv4}" not in log
    assert f"tags: h-{bios.name}, known, ipxe," in log
    for n in (uefi, bios):
        _check_hardware(_ssh(rig, n, keys[n.name], INVENTORY_CMDS), n)
    # a key that is not the host's own is refused, not learned
    with pytest.raises(paramiko.BadHostKeyException):
        _ssh_once_with_keys(rig, bios, keys[uefi.name])


def _ssh_once_with_keys(rig: Rig, n: LabNode, host_keys: list[str]) -> None:
    address = f"{rig.lab.net.subnet}.{n.ipv4}"
    known = rig.state / "known_hosts.wrong"
    known.write_text("".join(f"{address} {k}\n" for k in host_keys))

    def attempt() -> None:
        client = paramiko.SSHClient()
        client.load_host_keys(str(known))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                address,
                username="inferno",
                key_filename=str(rig.operator_key),
                look_for_keys=False,
                allow_agent=False,
                timeout=10,
            )
        finally:
            client.close()

    in_netns(rig.srv, attempt)


def test_boot_override_disk_does_not_pxe(rig: Rig) -> None:
    n = node("lab-node-3")
    mark = len(rig.dnsmasq_log())
    boot_mark = len(rig.boot_log.read_text(errors="replace"))
    assert _boot_and_power(rig, n, BootDevice.disk, PowerAction.on) == "On"
    time.sleep(30)  # OVMF reaches its network boot in ~10 s when it tries one
    rig.note_qemu()
    assert n.mac not in rig.dnsmasq_log()[mark:]
    assert f"/ipxe/{n.name}" not in rig.boot_log.read_text(errors="replace")[boot_mark:]
    assert _power(rig, n) == "On"
    assert _power(rig, n, PowerAction.force_off) == "Off"


def test_bios_setting_and_bios_update_are_applied_and_read_back(rig: Rig) -> None:
    """`provision bios --apply` (the libvirt driver's Bios/Settings PATCH, a power cycle, read back) and
    `provision firmware --update bios=URL` (SimpleUpdate through the System, read back: the emulator
    takes 1.0.0 to 1.1.0 whatever the image)."""
    n, exe = node("lab-node-2"), str(Path(sys.executable).parent / "provision")
    env = dict(os.environ, PROVISION_PROFILES=str(rig.lab.profiles), PROVISION_STATE=str(rig.state))
    base, fw = (["ip", "netns", "exec", rig.srv, exe, cmd, n.name, "--json"] for cmd in ("bios", "firmware"))
    update = [*fw, "--update", "bios=http://10.77.0.1:8080/images/bios-1.1.0.bin", "--image-version", "1.1.0"]
    out = [
        subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
        for argv in ([*base, "--apply"], base, update)
    ]
    rig.note_qemu()
    assert [o.returncode for o in out] == [0, 0, 0], "".join(o.stdout[-1500:] + o.stderr[-1500:] for o in out)
    applied, again, flashed = (json.loads(o.stdout) for o in out)
    assert applied["bios"]["registry_read"] is True  # the name checked against the emulator's registry
    want = [("bios:ProcTurboMode", "pass", "Disabled")]  # profiles-lab/lab-vm.yaml bios.attributes
    assert [(f["component"], f["verdict"], f["observed"]) for f in applied["findings"]] == want
    assert again["bios"]["attributes"]["ProcTurboMode"] == "Disabled"
    assert (flashed["update"]["before"], flashed["update"]["after"]) == ("1.0.0", "1.1.0")
    assert _power(rig, n, PowerAction.force_off) == "Off"


def test_provision_host_killed_mid_install_resumes_to_accepted(rig: Rig) -> None:
    """`provision host lab-node-1` (the acceptance plan: the lab profile's contract), killed
    mid-install like a lost session, then run again: it resumes (one install, never a second)
    through SSH as the non-root admin, the burn-in (the agent under `sudo -n`), validation, the HTML
    report and the handoff manifests: ACCEPTED."""
    n = node("lab-node-1")
    exe = str(Path(sys.executable).parent / "provision")
    env = dict(os.environ, PROVISION_PROFILES=str(rig.lab.profiles), PROVISION_STATE=str(rig.state))
    argv = ["ip", "netns", "exec", rig.srv, exe, "host", n.name, "--yes"]
    argv += ["--identity", str(rig.operator_key), "--no-serve"]  # the module's `provision serve` answers
    with StateStore.open(rig.state) as store:
        before = {r.id for r in store.list_runs(n.name)}  # the earlier tests' runs of this host
    first_log = rig.state / "host-first.log"
    with first_log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    rig.seen_pids.append((proc.pid, "provision"))
    try:

        def installing() -> bool:
            with StateStore.open(rig.state) as store:
                return any(
                    e.kind == "install.started" for e in store.events(host=n.name) if e.run_id not in before
                )

        _wait(f"{n.name}: the first run's installer started", INSTALL_TIMEOUT_S, installing, rig)
    finally:
        proc.kill()  # the controller dies mid-install, the way a crash or a lost session would
        proc.wait(timeout=30)
    second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1200, check=False)
    rig.note_qemu()
    text = second.stdout + second.stderr
    with StateStore.open(rig.state) as store:
        state = store.get_host_state(n.name)
        runs = [r for r in store.list_runs(n.name) if r.id not in before]
        kinds = [
            e.kind
            for e in store.events(host=n.name)
            if e.run_id not in before and e.kind.startswith("install.")
        ]
    run_dir = rig.state / "runs" / runs[-1].id
    verdict = json.loads((run_dir / "acceptance.json").read_text())
    findings = json.loads((run_dir / "findings.json").read_text())["findings"]
    failing = [
        (f["id"], f["verdict"], f["observed"])
        for f in findings
        if f["verdict"] == "fail" or (f["verdict"] == "inconclusive" and f["required"])
    ]
    assert (second.returncode, verdict["verdict"], failing) == (0, "accepted", []), text[-3000:]
    assert str(state) in ("accepted", "handed-off"), state
    assert kinds == ["install.started", "install.finished"]  # one install, resumed: never a second
    report = (run_dir / "report.html").read_text()
    assert n.name in report and "accepted" in report.lower()
    manifests = (run_dir / "handoff-manifests.yaml").read_text()
    assert f"name: {n.name}" in manifests and "kind: Node" in manifests
    # the lab's contract was met, every part of it from the run's own measurements
    contract = {f["id"]: f["verdict"] for f in findings if f["check"].startswith("contract_")}
    assert {"contract_memory_coverage:memory", "contract_suite:suite:nvme"} <= set(contract), contract
    assert set(contract.values()) == {"pass"}, contract
    # the waived checks are shown, with their reason, not hidden
    waivable = {w.check for w in load_catalog(rig.lab.profiles).profiles["lab-vm"].acceptance.not_required}
    waived = {f["check"] for f in findings if f.get("waived")}
    assert waived and waived <= waivable, waived


def test_reinstall_after_the_lab_swaps_a_dimm_and_an_nvme(rig: Rig) -> None:
    n = node("lab-node-1")
    assert _power(rig, n, PowerAction.force_off) == "Off"
    env = dict(os.environ, PROVISION_STATE=str(rig.state))
    for part, serial in (("dimm", "LABDIMM1SWAP"), ("nvme", "LABNVME1SWAP")):
        out = subprocess.run(
            [sys.executable, "-m", "provision", "lab", "swap", "--id", LAB_ID, n.name, part, serial],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert out.returncode == 0, out.stderr
    swapped = {x.name: x for x in nodes_of(load(rig.lab.root / "lab.json"))}[n.name]
    assert swapped.dimms[0].serial == "LABDIMM1SWAP" and swapped.nvme[0].serial == "LABNVME1SWAP"
    run_id = _open_run(rig, swapped)
    assert _boot_and_power(rig, swapped, BootDevice.pxe, PowerAction.on) == "On"
    keys = _wait_installed(rig, swapped, run_id)
    _check_hardware(_ssh(rig, swapped, keys, INVENTORY_CMDS), swapped)
