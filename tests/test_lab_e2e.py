"""End to end on the lab: real VMs (QEMU TCG, OVMF and SeaBIOS), a real BMC (sushy-emulator over
libvirt, TLS + basic auth), real DHCP/TFTP (dnsmasq) and the installer stand-in writing the Debian
image, all in namespaces this test creates. Every process the lab starts is stopped by PID, and the
module checks none is left, even when a test fails.

INTERIM: until `provision host` (flow) and the bootchain's boot server are on main, the test drives
the chain itself: Redfish calls from here, and tests/support/labboot.py answering iPXE, kickstart
and callbacks. The lab (provision/lab) is the product under test.
"""

from __future__ import annotations

import json
import os
import secrets
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

from provision.catalog import load_catalog
from provision.lab import libvirtd, system
from provision.lab.artifacts import default_cache_dir
from provision.lab.lab import Lab, down, nodes_of, open_lab, up
from provision.lab.ledger import load
from provision.lab.spec import LabNode, node
from tests.conftest import require_tool
from tests.support.netns import in_netns

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
LAB_ID = f"e{os.getpid() % 10_000_000}"
BOOT_PORT = 8080
INSTALL_TIMEOUT_S = 480.0
SSH_TIMEOUT_S = 300.0
TOOLS = (
    "qemu-system-x86_64",
    "qemu-img",
    "libvirtd",
    "virtlogd",
    "virsh",
    "dnsmasq",
    "unshare",
    "ip",
    "zstd",
)


@dataclass
class Rig:
    lab: Lab
    state: Path
    runs: Path
    events: Path
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
    runs = state / "runs"
    runs.mkdir()
    r = Rig(the_lab, state, runs, state / "events.jsonl", state / "labboot.log", the_lab.operator_key)
    r.events.touch()
    boot_pid = 0
    try:
        up(the_lab, cache=default_cache_dir())
        ledger = load(the_lab.root / "lab.json")
        assert ledger is not None
        r.seen_pids += [(p.pid, p.program) for p in ledger.procs]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        tree_url = f"{the_lab.install_url}/BaseOS/x86_64/os"
        boot_pid = system.spawn(
            [
                sys.executable,
                "-m",
                "tests.support.labboot",
                the_lab.net.server_ip,
                str(BOOT_PORT),
                str(runs),
                str(r.events),
                tree_url,
            ],
            log=r.boot_log,
            netns=r.srv,
            env=env,
        )
        r.seen_pids.append((boot_pid, "tests.support.labboot"))
        yield r
    finally:
        r.note_qemu() if (the_lab.root / "lab.json").exists() else None
        if boot_pid:
            system.stop(boot_pid, "tests.support.labboot")
        down(the_lab)
        left = [(pid, prog) for pid, prog in r.seen_pids if system.is_ours(pid, prog)]
        netns = system.run(["ip", "netns", "list"], check=False)
        assert not left, f"processes the lab started are still running: {left}"
        assert the_lab.net.srv_ns not in netns and the_lab.net.rack_ns not in netns


# -- the BMC --------------------------------------------------------------------------------------
def _bmc(
    rig: Rig, method: str, n: LabNode, path: str = "", body: dict[str, Any] | None = None
) -> requests.Response:
    bmc = rig.lab.root / "bmc"
    user, password = (bmc / "bmc.credentials").read_text().strip().split(":", 1)
    url = f"{rig.lab.bmc_url}/redfish/v1/Systems/{n.uuid}{path}"

    def call() -> requests.Response:
        with requests.Session() as s:
            s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the lab CA
            return s.request(
                method, url, json=body, auth=(user, password), verify=str(bmc / "ca.pem"), timeout=30
            )

    return in_netns(rig.srv, call)


def _pxe_on(rig: Rig, n: LabNode) -> None:
    r = _bmc(
        rig,
        "PATCH",
        n,
        body={"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}},
    )
    assert r.status_code == 204, r.text
    r = _bmc(rig, "POST", n, "/Actions/ComputerSystem.Reset", {"ResetType": "On"})
    assert r.status_code == 204, r.text


def _power(rig: Rig, n: LabNode) -> str:
    return str(_bmc(rig, "GET", n).json()["PowerState"])


# -- runs, callbacks, SSH ---------------------------------------------------------------------------
def _kickstart(n: LabNode, token: str, rig: Rig) -> str:
    """INTERIM: the lines of the bootchain's kickstart the stand-in acts on, until kickstart.render is
    on main. Boot disks by stable id, static address, the operator's key, callbacks with the token."""
    base = f"http://{rig.lab.net.server_ip}:{BOOT_PORT}/callback/{n.name}"
    post = f"curl -fsS -X POST -H 'Content-Type: text/plain' -H 'Authorization: Bearer {token}'"
    disks = ",".join(f"disk/by-id/ata-QEMU_HARDDISK_{d.serial}" for d in n.boot_disks)
    key = rig.operator_key.with_suffix(".pub").read_text().strip()
    return (
        "text\n"
        f"url --url={rig.lab.install_url}/BaseOS/x86_64/os\n"
        f"network --device={n.mac} --bootproto=static --ip={rig.lab.net.subnet}.{n.ipv4}"
        " --netmask=255.255.255.0 --onboot=yes --activate --noipv6\n"
        f"network --hostname={n.name}\n"
        f"ignoredisk --only-use={disks}\n"
        "rootpw --lock\nuser --name=inferno --groups=wheel\n"
        f'sshkey --username=inferno "{key}"\n'
        "reboot\n\n%packages\n@^minimal-environment\n%end\n\n"
        f"%pre\necho started | {post} --data-binary @- {base}/started\n%end\n\n"
        f"%post\nssh-keygen -A\n"
        f"cat /etc/ssh/ssh_host_*_key.pub | {post} --data-binary @- {base}/finished\n%end\n"
    )


def _open_run(rig: Rig, n: LabNode) -> None:
    """What `provision host` does when it opens a run: a token, the kickstart, and the iPXE URL with
    the token published in <state>/netboot/<host>.url for the DHCP side (the lab's supervisor)."""
    token = secrets.token_urlsafe(16)
    (rig.runs / f"{n.name}.json").write_text(
        json.dumps({"token": token, "kickstart": _kickstart(n, token, rig)})
    )
    url = f"http://{rig.lab.net.server_ip}:{BOOT_PORT}/ipxe/{n.name}?token={token}"
    rig.lab.netboot.mkdir(parents=True, exist_ok=True)
    (rig.lab.netboot / f"{n.name}.url").write_text(url + "\n")
    conf = rig.lab.root / "dnsmasq.conf"
    _wait(f"{n.name}: dnsmasq restarted with the published URL", 30, lambda: url in conf.read_text(), rig)


def _events(rig: Rig, n: LabNode) -> list[dict[str, Any]]:
    lines = rig.events.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["host"] == n.name]


def _wait(what: str, timeout_s: float, probe: Callable[[], Any], rig: Rig) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rig.note_qemu()
        got = probe()
        if got:
            return got
        time.sleep(2)
    pytest.fail(f"{what}: nothing within {timeout_s:.0f} s")


def _wait_installed(rig: Rig, n: LabNode, after: float) -> list[str]:
    def finished() -> dict[str, Any] | None:
        return next(
            (e for e in _events(rig, n) if e["at"] > after and e["event"] in ("finished", "failed")), None
        )

    event = _wait(f"{n.name}: installer callback", INSTALL_TIMEOUT_S, finished, rig)
    (rig.lab.netboot / f"{n.name}.url").unlink(missing_ok=True)
    assert event["event"] == "finished", event["body"]
    kinds = [e["event"] for e in _events(rig, n) if e["at"] > after]
    assert kinds == ["started", "finished"]
    keys = [line for line in event["body"].splitlines() if line.startswith(("ssh-ed25519 ", "ecdsa-sha2-"))]
    assert keys, f"no host key in the finished callback: {event['body']!r}"
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
        except (OSError, EOFError, paramiko.ssh_exception.NoValidConnectionsError):
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
    # the BMC: TLS against the lab CA only, and no answer without credentials
    bmc = rig.lab.root / "bmc"
    anon = in_netns(
        rig.srv,
        lambda: requests.get(f"{rig.lab.bmc_url}/redfish/v1/Systems", verify=str(bmc / "ca.pem"), timeout=10),
    )
    assert anon.status_code == 401
    assert _power(rig, uefi) == "Off" and _power(rig, bios) == "Off"
    t0 = time.time()
    for n in (uefi, bios):
        _open_run(rig, n)
        _pxe_on(rig, n)
    keys = {n.name: _wait_installed(rig, n, t0) for n in (uefi, bios)}
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
    r = _bmc(
        rig,
        "PATCH",
        n,
        body={"Boot": {"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Once"}},
    )
    assert r.status_code == 204
    mark = len(rig.dnsmasq_log())
    r = _bmc(rig, "POST", n, "/Actions/ComputerSystem.Reset", {"ResetType": "On"})
    assert r.status_code == 204
    assert _power(rig, n) == "On"
    time.sleep(30)  # OVMF reaches its network boot in ~10 s when it tries one
    rig.note_qemu()
    assert _bmc(rig, "GET", n).json()["Boot"]["BootSourceOverrideTarget"] == "Hdd"
    assert n.mac not in rig.dnsmasq_log()[mark:]
    assert f"{rig.lab.net.subnet}.{n.ipv4}" not in rig.boot_log.read_text()
    assert _bmc(rig, "POST", n, "/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"}).status_code == 204
    assert _power(rig, n) == "Off"


def test_reinstall_after_the_lab_swaps_a_dimm_and_an_nvme(rig: Rig) -> None:
    n = node("lab-node-1")
    assert _bmc(rig, "POST", n, "/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"}).status_code == 204
    env = dict(os.environ, PROVISION_STATE=str(rig.state))
    for part, serial in (("dimm", "LABDIMM1SWAP"), ("nvme", "LABNVME1SWAP")):
        out = subprocess.run(
            [sys.executable, "-m", "provision.cli", "lab", "swap", "--id", LAB_ID, n.name, part, serial],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert out.returncode == 0, out.stderr
    swapped = {x.name: x for x in nodes_of(load(rig.lab.root / "lab.json"))}[n.name]
    assert swapped.dimms[0].serial == "LABDIMM1SWAP" and swapped.nvme[0].serial == "LABNVME1SWAP"
    t0 = time.time()
    _open_run(rig, swapped)
    _pxe_on(rig, swapped)
    keys = _wait_installed(rig, swapped, t0)
    _check_hardware(_ssh(rig, swapped, keys, INVENTORY_CMDS), swapped)


def test_resume_of_a_flow_killed_mid_install() -> None:
    pytest.skip("needs `provision host` (the flow's issue) on main; the lab side is ready for it")
