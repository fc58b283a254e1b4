"""Adapter: the lab's own libvirtd and virtlogd, with no systemd.

Each lab gets a private libvirt: the daemons run in a mount namespace of their own in which
/etc/libvirt, /run/libvirt, /var/lib/libvirt and /var/log/libvirt are the lab's directories, so two
labs (a test and the demo) and any other libvirtd on the machine never see each other's domains.
libvirtd runs inside the rack's network namespace, so the taps of its VMs land on the lab bridge.
Clients (virsh, sushy-emulator) reach it through the socket's path in the lab directory.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from provision.lab import system
from provision.lab.netconf import render_qemu_conf
from provision.model.errors import ToolError

BINDS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt")


def uri(root: Path) -> str:
    return f"qemu+unix:///system?socket={root / 'run' / 'libvirt-sock'}"


def prepare(root: Path, cache: Path) -> dict[str, Path]:
    """The lab's libvirt directories, by the system path each one stands in for."""
    dirs = {
        "/etc/libvirt": root / "etc",
        "/run/libvirt": root / "run",
        "/var/lib/libvirt": root / "lib",
        "/var/log/libvirt": root / "log",
        # QEMU capabilities probing costs ~8 s: this cache is shared by every lab on the machine
        "/var/cache/libvirt": cache / "libvirt-cache",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    (root / "etc" / "qemu.conf").write_text(render_qemu_conf())
    (root / "etc" / "libvirtd.conf").write_text(
        '# lab libvirtd: local socket only\nunix_sock_rw_perms = "0700"\n'
    )
    (root / "etc" / "virtlogd.conf").write_text("# lab virtlogd: defaults\n")
    return dirs


def start(root: Path, cache: Path, rack_ns: str, log: Path) -> tuple[int, int]:
    """Start virtlogd and libvirtd (daemonized, PID files in `root`); their PIDs."""
    dirs = prepare(root, cache)
    for target in BINDS:
        Path(target).mkdir(parents=True, exist_ok=True)  # mount points only; nothing is written there
    mounts = "; ".join(f"mount --bind {shlex.quote(str(dirs[t]))} {t}" for t in BINDS)
    virtlogd_pid = root / "virtlogd.pid"
    libvirtd_pid = root / "libvirtd.pid"
    for p in (virtlogd_pid, libvirtd_pid):
        p.unlink(missing_ok=True)
    script = (
        f"set -e; {mounts}; "
        f"virtlogd -d -p {shlex.quote(str(virtlogd_pid))}; "
        f"exec ip netns exec {shlex.quote(rack_ns)} libvirtd -d -p {shlex.quote(str(libvirtd_pid))}"
    )
    with open(log, "ab") as out:
        out.write(f"lab: starting libvirtd in mount ns + netns {rack_ns}\n".encode())
    system.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], timeout_s=60)
    vpid = system.read_pidfile(virtlogd_pid)
    lpid = system.read_pidfile(libvirtd_pid)
    return vpid, lpid


def wait_ready(root: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            virsh(root, "version")
            return
        except ToolError as exc:
            last = str(exc)
            time.sleep(0.2)
    raise ToolError(f"libvirtd did not answer within {timeout_s:.0f} s: {last}")


def virsh(root: Path, *args: str, check: bool = True, timeout_s: float = 60.0) -> str:
    return system.run(["virsh", "-q", "-c", uri(root), *args], check=check, timeout_s=timeout_s)


def domain_pid(root: Path, name: str) -> int | None:
    """The QEMU PID libvirt recorded for a running domain."""
    try:
        return int((root / "run" / "qemu" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def domain_states(root: Path) -> dict[str, str]:
    out = virsh(root, "list", "--all", check=False, timeout_s=20)
    states: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            states[parts[1]] = parts[2].strip()
    return states
