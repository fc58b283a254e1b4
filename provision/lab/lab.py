"""Adapter: bring a lab of virtual hosts up, show it, change its hardware, and take it down.

Layout (names from LabNet):
  netns <srv>:  veth 10.77.0.1/24 + fd77::1/64; dnsmasq (DHCP, TFTP, RA); the install mirror
                (HTTP :8081); the BMC (sushy-emulator, HTTPS + basic auth on 127.0.0.1:8443);
                and, run there by the caller, the boot server and the controller's SSH.
  netns <rack>: bridge with the veth's peer and the VMs' taps; libvirtd (private mount ns).
Neither namespace has a route out. Every PID is in the ledger before the next step runs.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.lab import artifacts, libvirtd, listener, reap, system
from provision.lab.domain import OVMF_CODE, node_paths, render_domain
from provision.lab.ledger import LEDGER, Ledger, Proc, load
from provision.lab.netconf import render_sushy_conf
from provision.lab.spec import NODES, LabNet, LabNode, check_lab_id, swapped
from provision.lab.tls import BmcSecrets, make_bmc_secrets
from provision.model.errors import BadInput, ProvisionError, ToolError

BMC_IP = "127.0.0.1"  # inside <srv>: the lab hosts themselves cannot reach their BMCs
BMC_PORT = 8443
MIRROR_PORT = 8081
BOOT_PORT = 8080
IPXE_FILES = ("undionly.kpxe", "snponly.efi", "ipxe.efi")
IPXE_DIR = Path("/usr/lib/ipxe")
REPO_LAB_PROFILES = Path(__file__).resolve().parent.parent.parent / "profiles-lab"
TOOLS = ("ip", "unshare", "dnsmasq", "libvirtd", "virtlogd", "virsh", "qemu-img", "qemu-system-x86_64")


@dataclass(frozen=True)
class Lab:
    net: LabNet
    root: Path  # <state>/lab/<id>

    @property
    def libvirt(self) -> Path:
        return self.root / "libvirt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def mirror(self) -> Path:
        return self.root / "mirror"

    @property
    def tree(self) -> Path:  # the "Rocky" install tree the kickstart's url line points at
        return self.mirror / "rocky" / "BaseOS" / "x86_64" / "os"

    @property
    def netboot(self) -> Path:  # where `provision host` publishes iPXE URLs (<state>/netboot)
        return self.root.parent.parent / "netboot"

    @property
    def operator_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def bmc_url(self) -> str:
        return f"https://{BMC_IP}:{BMC_PORT}"

    @property
    def install_url(self) -> str:
        return f"http://{self.net.server_ip}:{MIRROR_PORT}/rocky"

    @property
    def boot_url(self) -> str:
        return f"http://{self.net.server_ip}:{BOOT_PORT}"


def open_lab(state_dir: Path, lab_id: str) -> Lab:
    check_lab_id(lab_id)
    return Lab(net=LabNet(lab_id), root=state_dir / "lab" / lab_id)


def nodes_of(ledger: Ledger | None) -> tuple[LabNode, ...]:
    """The lab's nodes with the parts `lab swap` replaced."""
    out = []
    for n in NODES:
        for part, serial in (ledger.swapped.get(n.name, {}) if ledger else {}).items():
            n = swapped(n, part, serial)
        out.append(n)
    return tuple(out)


def _preflight() -> None:
    if os.geteuid() != 0:
        raise BadInput("provision lab: expected to run as root (namespaces, bridges, libvirtd), got a user")
    missing = [t for t in TOOLS if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]
    if missing:
        raise ToolError(f"provision lab: not installed: {', '.join(missing)} (make setup installs them)")


def _venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise ToolError(f"{name}: not installed in the project's virtualenv (make setup)")
    return found


def up(
    lab: Lab,
    *,
    cache: Path,
    boot_url: str | None = None,
    owned: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> Ledger:
    """Bring the lab up. `owned`: the lab lives only as long as this process (a test session), so
    a later `up` reaps it once this process is gone; otherwise it stays up for later commands."""
    _preflight()
    reap_stale(lab, say)
    payload = artifacts.ensure_payload(cache)
    for d in (lab.root, lab.logs, lab.libvirt, lab.mirror, lab.root / "disks", lab.root / "tftp"):
        d.mkdir(parents=True, exist_ok=True)
    # Owned while it comes up: killed half way, the lab is reaped by the next `up`.
    me = os.getpid()
    ledger = Ledger(
        lab_id=lab.net.lab_id, directory=str(lab.root), owner_pid=me, owner_start=system.start_time(me)
    )
    ledger.save()
    try:
        _up(lab, ledger, payload, cache, boot_url or lab.boot_url)
    except BaseException:
        down(lab)
        raise
    if not owned:
        ledger.owner_pid = ledger.owner_start = None
    ledger.up = True
    ledger.save()
    return ledger


def reap_stale(lab: Lab, say: Callable[[str], None] = lambda line: None) -> list[str]:
    """What `up` does first (provision.lab.reap): take down, by PID as `down` does, each lab whose
    owner is gone or whose processes died; BadInput when this lab is up and well."""

    def take_down(ledger: Ledger) -> list[str]:
        return teardown(Lab(net=LabNet(ledger.lab_id), root=Path(ledger.directory)), ledger)

    return reap.reap(lab.root, lab.net.lab_id, take_down, say)


def _up(lab: Lab, ledger: Ledger, payload: artifacts.Payload, cache: Path, boot_url: str) -> None:
    _add_netns(lab.net, ledger)
    _wire_network(lab.net)
    nodes = nodes_of(ledger)
    _start_dhcp(lab, ledger, boot_url)
    _start_mirror(lab, ledger, payload)
    _start_libvirtd(lab, ledger, cache)
    for n in nodes:
        _define(lab, ledger, n)
    secrets = _start_bmc(lab, ledger)
    _check_started(lab, ledger)
    write_profiles(lab, nodes, secrets, _operator_key(lab))


def _add_netns(net: LabNet, ledger: Ledger) -> None:
    """Each namespace is in the ledger before it exists, so `down` removes a half-made one too."""
    for ns in (net.srv_ns, net.rack_ns):
        ledger.netns.append(ns)
        ledger.save()
        system.run(["ip", "netns", "add", ns])


def _wire_network(net: LabNet) -> None:
    """The veth from <srv> into <rack>, its addresses, and the rack's bridge."""
    s, r = net.srv_ns, net.rack_ns
    veth_pair = ["link", "add", net.veth_srv, "type", "veth", "peer", "name", net.veth_rack, "netns", r]
    for cmd in (
        ["ip", "-n", s, *veth_pair],
        ["ip", "-n", s, "addr", "add", f"{net.server_ip}/24", "dev", net.veth_srv],
        ["ip", "-n", s, "addr", "add", f"{net.server_ip6}/64", "dev", net.veth_srv, "nodad"],
        ["ip", "-n", s, "link", "set", "lo", "up"],
        ["ip", "-n", s, "link", "set", net.veth_srv, "up"],
        ["ip", "-n", r, "link", "add", net.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"],
        ["ip", "-n", r, "link", "set", net.veth_rack, "master", net.bridge],
        ["ip", "-n", r, "link", "set", "lo", "up"],
        ["ip", "-n", r, "link", "set", net.veth_rack, "up"],
        ["ip", "-n", r, "link", "set", net.bridge, "up"],
    ):
        system.run(cmd)


def _start_dhcp(lab: Lab, ledger: Ledger, boot_url: str) -> None:
    """The DHCP/TFTP supervisor in <srv>, and the dnsmasq it starts, with the iPXE binaries it serves."""
    tftp = lab.root / "tftp"
    for f in IPXE_FILES:
        shutil.copy(IPXE_DIR / f, tftp / f)
    (lab.root / "dnsmasq.leases").touch()
    lab.netboot.mkdir(parents=True, exist_ok=True)
    net = lab.net
    argv = [sys.executable, "-m", "provision.lab.dhcp", str(lab.root), str(lab.netboot), boot_url, net.lab_id]
    pid = system.spawn(argv, log=lab.logs / "dhcp.log", netns=net.srv_ns)
    ledger.add_proc(Proc("dhcp", pid, "provision.lab.dhcp", net.srv_ns))
    dnsmasq_pid = system.read_pidfile(lab.root / "dnsmasq.pid")
    ledger.add_proc(Proc("dnsmasq", dnsmasq_pid, "dnsmasq", net.srv_ns))


def _start_mirror(lab: Lab, ledger: Ledger, payload: artifacts.Payload) -> None:
    """The install mirror: the payload published as a Rocky tree, served over HTTP in <srv>."""
    artifacts.publish(payload, lab.tree)
    s = lab.net.srv_ns
    argv = [sys.executable, "-m", "http.server", "--bind", lab.net.server_ip, "--directory", str(lab.mirror)]
    mirror = listener.start(
        [*argv, str(MIRROR_PORT)],
        program="http.server",
        port=MIRROR_PORT,
        log=lab.logs / "mirror.log",
        netns=s,
    )
    ledger.add_proc(Proc("mirror", mirror.pid, "http.server", s))
    mirror.wait()


def _start_libvirtd(lab: Lab, ledger: Ledger, cache: Path) -> None:
    """virtlogd and libvirtd (in <rack>), ready for domains once this returns."""
    vpid, lpid = libvirtd.start(lab.libvirt, cache, lab.net.rack_ns, lab.logs / "libvirtd.out")
    ledger.add_proc(Proc("virtlogd", vpid, "virtlogd"))
    ledger.add_proc(Proc("libvirtd", lpid, "libvirtd", lab.net.rack_ns))
    ledger.libvirt_uri = libvirtd.uri(lab.libvirt)
    ledger.save()
    libvirtd.wait_ready(lab.libvirt)


def _start_bmc(lab: Lab, ledger: Ledger) -> BmcSecrets:
    """The lab's BMC: sushy-emulator over HTTPS with basic auth in <srv>, listening once this returns."""
    secrets = make_bmc_secrets(lab.root / "bmc", lab.net.lab_id, BMC_IP)
    sconf = lab.root / "sushy.conf"
    sconf.write_text(
        render_sushy_conf(
            listen_ip=BMC_IP,
            port=BMC_PORT,
            libvirt_uri=libvirtd.uri(lab.libvirt),
            cert=secrets.server_cert,
            key=secrets.server_key,
            htpasswd=secrets.htpasswd,
            ovmf_code=OVMF_CODE,
        )
    )
    s = lab.net.srv_ns
    argv = [_venv_tool("sushy-emulator"), "--config", str(sconf)]
    bmc = listener.start(argv, program="sushy-emulator", port=BMC_PORT, log=lab.logs / "sushy.log", netns=s)
    ledger.add_proc(Proc("sushy", bmc.pid, "sushy-emulator", s))
    ledger.bmc_url = lab.bmc_url
    ledger.save()
    bmc.wait()
    return secrets


def _check_started(lab: Lab, ledger: Ledger) -> None:
    """A daemon that died at start (a port taken, a bad config) fails `up` now, not a test later."""
    for proc in ledger.procs:
        if not system.is_ours(proc.pid, proc.program):
            raise ToolError(f"lab {proc.name} (pid {proc.pid}) exited at start; see {lab.logs}")


def _define(lab: Lab, ledger: Ledger, n: LabNode) -> None:
    paths = node_paths(n, lab.root / "disks", lab.logs)
    for disk, path in zip(n.boot_disks + n.nvme, paths.boot_disks + paths.nvme, strict=True):
        if not path.exists():
            system.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(disk.size_bytes)])
    xml = lab.libvirt / f"{n.name}.xml"
    xml.write_text(render_domain(n, paths, lab.net.bridge))
    if n.name not in ledger.domains:
        ledger.domains.append(n.name)
        ledger.save()
    libvirtd.virsh(lab.libvirt, "define", str(xml))


def _operator_key(lab: Lab) -> str:
    """The lab operator's SSH key pair (the controller logs in to the lab hosts with it)."""
    key = lab.operator_key
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        system.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"lab-{lab.net.lab_id}-operator",
                "-f",
                str(key),
            ]
        )
    return key.with_suffix(".pub").read_text().strip()


def write_profiles(lab: Lab, nodes: tuple[LabNode, ...], secrets: BmcSecrets, operator_pub: str) -> None:
    """The lab's profiles directory: the repository's profiles-lab/, with each host's BMC block
    pointing at this lab's BMC, CA and credentials file, and the site at this lab's servers."""
    lab.profiles.mkdir(parents=True, exist_ok=True)
    for src in REPO_LAB_PROFILES.glob("*.yaml"):
        if src.name not in ("hosts.yaml", "site.yaml"):
            shutil.copy(src, lab.profiles / src.name)
    data: dict[str, Any] = yaml.safe_load((REPO_LAB_PROFILES / "hosts.yaml").read_text())
    by_name = {n.name: n for n in nodes}
    for host in data["hosts"]:
        n = by_name.get(host["name"])
        if n is None:
            continue
        host["bmc"] = {
            "url": lab.bmc_url,
            "system": f"/redfish/v1/Systems/{n.uuid}",
            "credentials": f"file:{secrets.credentials}",
            "verify_tls": str(secrets.ca_cert),
        }
    header = f"# Written by `provision lab up` for lab {lab.net.lab_id} from profiles-lab/hosts.yaml.\n"
    (lab.profiles / "hosts.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False))
    site_src = REPO_LAB_PROFILES / "site.yaml"
    if site_src.exists():
        site: dict[str, Any] = yaml.safe_load(site_src.read_text())
        site["mirror_url"] = lab.install_url
        site["boot_server_url"] = lab.boot_url
        site["boot_images_dir"] = str(lab.tree / "images" / "pxeboot")
        site.setdefault("admin", {})["ssh_keys"] = [operator_pub]
        header = f"# Written by `provision lab up` for lab {lab.net.lab_id} from profiles-lab/site.yaml.\n"
        (lab.profiles / "site.yaml").write_text(header + yaml.safe_dump(site, sort_keys=False))


def down(lab: Lab, *, keep_disks: bool = False) -> list[str]:
    """Stop everything the ledger lists, by PID; remove the namespaces. What was done, line by line."""
    ledger = load(lab.root / LEDGER)
    if ledger is None:
        return []
    return teardown(lab, ledger, keep_disks=keep_disks)


def teardown(lab: Lab, ledger: Ledger, *, keep_disks: bool = False) -> list[str]:
    done: list[str] = []
    lpid = ledger.pid("libvirtd")
    if lpid is not None and system.is_ours(lpid, "libvirtd"):
        for name in ledger.domains:
            libvirtd.virsh(lab.libvirt, "destroy", name, check=False, timeout_s=30)
            libvirtd.virsh(lab.libvirt, "undefine", "--nvram", name, check=False, timeout_s=30)
    for name in ledger.domains:
        qpid = libvirtd.domain_pid(lab.libvirt, name)
        if qpid is not None and system.stop(qpid, "qemu-system"):
            done.append(f"stopped qemu {name} (pid {qpid})")
    for proc in reversed(ledger.procs):
        if system.stop(proc.pid, proc.program):
            done.append(f"stopped {proc.name} (pid {proc.pid})")
    late = _supervised_dnsmasq(lab)  # one the supervisor started after the ledger last saw it
    if late and system.stop(late, "dnsmasq"):
        done.append(f"stopped dnsmasq (pid {late})")
    existing = system.run(["ip", "netns", "list"], check=False) if ledger.netns else ""
    for ns in ledger.netns:
        if any(line.split()[0] == ns for line in existing.splitlines() if line.strip()):
            system.run(["ip", "netns", "del", ns], check=False)
            done.append(f"removed netns {ns}")
    if not keep_disks:
        shutil.rmtree(lab.root / "disks", ignore_errors=True)
    ledger.procs, ledger.netns, ledger.domains, ledger.up = [], [], [], False
    ledger.owner_pid = ledger.owner_start = None
    if lab.root.is_dir():  # a reaped lab's directory may be gone (a test's temporary one)
        ledger.save()
    ledger.unregister()
    return done


def _supervised_dnsmasq(lab: Lab) -> int:
    try:
        return int((lab.root / "dnsmasq.pid").read_text().strip())
    except (OSError, ValueError):
        return 0


def status(lab: Lab) -> dict[str, Any]:
    ledger = load(lab.root / LEDGER)
    if ledger is None:
        return {"lab": lab.net.lab_id, "up": False, "directory": str(lab.root), "procs": [], "domains": {}}
    current = _supervised_dnsmasq(lab)
    procs = []
    for p in ledger.procs:
        pid = current if p.name == "dnsmasq" and current else p.pid  # the supervisor restarts it
        procs.append({"name": p.name, "pid": pid, "alive": system.is_ours(pid, p.program), "netns": p.netns})
    domains: dict[str, str] = {}
    lpid = ledger.pid("libvirtd")
    if lpid is not None and system.is_ours(lpid, "libvirtd"):
        try:
            domains = libvirtd.domain_states(lab.libvirt)
        except ProvisionError as exc:
            domains = {"?": str(exc)}
    return {
        "lab": ledger.lab_id,
        "up": ledger.up and all(p["alive"] for p in procs),
        "directory": ledger.directory,
        "controller_netns": lab.net.srv_ns,
        "profiles": str(lab.profiles),
        "bmc": ledger.bmc_url,
        "install_url": lab.install_url,
        "libvirt_uri": ledger.libvirt_uri,
        "procs": procs,
        "domains": domains,
        "swapped": ledger.swapped,
    }


def swap(lab: Lab, node_name: str, part: str, serial: str) -> LabNode:
    """Replace a part of a powered-off node: its domain is redefined with the new serial."""
    ledger = load(lab.root / LEDGER)
    if ledger is None or not ledger.up:
        raise BadInput(f"lab {lab.net.lab_id}: expected it up, got it down")
    current = {n.name: n for n in nodes_of(ledger)}
    if node_name not in current:
        raise BadInput(f"lab host: expected one of {', '.join(current)}, got {node_name!r}")
    state = libvirtd.domain_states(lab.libvirt).get(node_name, "")
    if state == "running":
        raise BadInput(f"{node_name}: expected powered off to change its hardware, got {state}")
    new = swapped(current[node_name], part, serial)
    ledger.swapped.setdefault(node_name, {})[part] = serial
    ledger.save()
    _define(lab, ledger, new)
    return new
