"""A real PXE rig for tests: a Debian kernel, a busybox initrd standing in for Anaconda, two
network namespaces (server side and rack side, no uplink), dnsmasq, the boot server and QEMU (TCG).

Everything started here runs in its own process group and is stopped by PID; the namespaces and
links carry the test's PID in their names and are deleted on the way out.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
CACHE = REPO / ".cache" / "netboot"  # gitignored; one download per machine (or CI run)
NIC_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
)
_MODULE_PATHS = (
    "./lib/modules/*/kernel/drivers/virtio/*",
    "./lib/modules/*/kernel/net/core/failover.ko",
    "./lib/modules/*/kernel/drivers/net/net_failover.ko",
    "./lib/modules/*/kernel/drivers/net/virtio_net.ko",
)


class Unavailable(Exception):
    """Something the rig needs cannot be had here; the test skips with this reason."""


def _run(argv: list[str], cwd: Path | None = None, timeout_s: float = 300) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise Unavailable(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc.stdout


def debian_kernel(cache: Path = CACHE) -> tuple[Path, Path]:
    """(vmlinuz, directory of the NIC modules) from Debian's current linux-image-amd64, cached."""
    found = sorted(cache.glob("boot/vmlinuz-*"))
    if not found:
        if shutil.which("apt-get") is None:
            raise Unavailable("apt-get is not here to download a Debian kernel")
        deps = _run(["apt-cache", "depends", "linux-image-amd64"])
        match = re.search(r"Depends: (linux-image-\d\S*-amd64)", deps)
        if match is None:
            raise Unavailable(f"no linux-image-*-amd64 behind linux-image-amd64: {deps[:200]}")
        work = cache / "download"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _run(["apt-get", "download", "-q", match.group(1)], cwd=work)
        (deb,) = work.glob("*.deb")
        # Only the kernel and the NIC modules: the full tree is ~400 MB.
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        subprocess.run(
            ["tar", "-x", "-C", str(cache), "--wildcards", "./boot/vmlinuz-*", *_MODULE_PATHS],
            stdin=tar.stdout,
            check=False,
            timeout=300,
        )
        tar.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        found = sorted(cache.glob("boot/vmlinuz-*"))
        if not found:
            raise Unavailable(f"no vmlinuz extracted from {deb.name}")
    vmlinuz = found[-1]
    modules = cache / "lib" / "modules" / vmlinuz.name.removeprefix("vmlinuz-") / "kernel"
    if not modules.is_dir():
        raise Unavailable(f"no modules beside {vmlinuz}")
    return vmlinuz, modules


INIT = r"""#!/bin/sh
# Stand-in for Anaconda: fetch the kickstart named on the kernel line, then post the callbacks
# the kickstart itself names (%pre: started, last %post: finished with the host's public keys).
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
say() { echo "TEST-INIT: $*"; }
die() { say "FAILED: $*"; sync; poweroff -f; }
for m in MODULES; do insmod /lib/modules/$m.ko 2>/dev/null; done
for i in 1 2 3 4 5 6 7 8 9 10; do
  IF=$(ls /sys/class/net | grep -v '^lo$' | head -1); [ -n "$IF" ] && break; sleep 0.5
done
[ -n "$IF" ] || die "no network interface"
ip link set lo up; ip link set "$IF" up
say "nic $IF mac $(cat /sys/class/net/$IF/address)"
udhcpc -i "$IF" -n -q -t 10 -T 2 -s /bin/dhcp-event || die "no DHCP lease"
KS=$(tr ' ' '\n' < /proc/cmdline | grep '^inst.ks=' | cut -d= -f2-)
[ -n "$KS" ] || die "no inst.ks= on the kernel line"
wget -q -O /tmp/ks.cfg "$KS" || die "kickstart fetch failed"
grep -q '^%post' /tmp/ks.cfg || die "not a kickstart"
TOKEN=$(grep -o 'Bearer [A-Za-z0-9_-]*' /tmp/ks.cfg | head -1 | cut -d' ' -f2)
STARTED=$(grep -o 'http://[^ ]*/callback/[^ ]*/started' /tmp/ks.cfg | head -1)
FINISHED=$(grep -o 'http://[^ ]*/callback/[^ ]*/finished' /tmp/ks.cfg | head -1)
echo "installer stand-in started" > /tmp/started
wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" --post-file /tmp/started "$STARTED" \
  || die "started callback"
wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" --header "Content-Type: text/plain" \
  --post-file /etc/ssh/ssh_host_ed25519_key.pub "$FINISHED" || die "finished callback"
say "done"
sync; poweroff -f
"""

DHCP_EVENT = r"""#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "TEST-INIT: lease $ip" ;;
esac
"""


def build_initrd(dest: Path, modules: Path, host_key_pub: str) -> Path:
    """A gzip'd newc cpio: static busybox, the NIC modules, /init, and the 'installed' host key."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise Unavailable("busybox (static) is not installed (make setup installs busybox-static)")
    root = dest / "initrd-root"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc/ssh", "lib/modules"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in (
        "sh",
        "mount",
        "insmod",
        "ip",
        "udhcpc",
        "wget",
        "cat",
        "echo",
        "sleep",
        "poweroff",
        "grep",
        "tr",
        "cut",
        "head",
        "ls",
        "sync",
    ):
        (root / "bin" / applet).symlink_to("busybox")
    for name in NIC_MODULES:
        found = list(modules.rglob(f"{name}.ko"))
        if not found:
            raise Unavailable(f"module {name}.ko is not in {modules}")
        shutil.copy2(found[0], root / "lib" / "modules" / f"{name}.ko")
    (root / "init").write_text(INIT.replace("MODULES", " ".join(NIC_MODULES)))
    (root / "bin" / "dhcp-event").write_text(DHCP_EVENT)
    (root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").write_text(host_key_pub)
    os.chmod(root / "init", 0o755)
    os.chmod(root / "bin" / "dhcp-event", 0o755)
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files, capture_output=True, check=True
    ).stdout
    out = dest / "initrd.img"
    out.write_bytes(gzip.compress(archive, compresslevel=1))
    return out


@dataclass(frozen=True)
class Lab:
    server_ns: str
    rack_ns: str
    server_ip: str
    subnet: str
    veth_server: str
    bridge: str

    def tap(self, suffix: str) -> str:
        """A tap on the rack bridge for one VM."""
        name = f"t{suffix}{os.getpid()}"[:15]
        _ip(["-n", self.rack_ns, "tuntap", "add", name, "mode", "tap"])
        _ip(["-n", self.rack_ns, "link", "set", name, "master", self.bridge])
        _ip(["-n", self.rack_ns, "link", "set", name, "up"])
        return name


def _ip(args: list[str]) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise Unavailable(f"ip {' '.join(args)}: {proc.stderr.strip()}")


@contextmanager
def lab_network() -> Iterator[Lab]:
    """Server netns (10.77.0.1/24, fd77::1/64) <- veth -> rack netns with a bridge. No uplink."""
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root")
    pid = os.getpid()
    lab = Lab(f"ipsrv{pid}", f"iprack{pid}", "10.77.0.1", "10.77.0.0/24", f"vs{pid}", f"br{pid}")
    created: list[str] = []
    try:
        for ns in (lab.server_ns, lab.rack_ns):
            _ip(["netns", "add", ns])
            created.append(ns)
        _ip(["link", "add", lab.veth_server, "type", "veth", "peer", "name", f"vr{pid}"])
        _ip(["link", "set", lab.veth_server, "netns", lab.server_ns])
        _ip(["link", "set", f"vr{pid}", "netns", lab.rack_ns])
        srv = ["-n", lab.server_ns]
        _ip([*srv, "addr", "add", f"{lab.server_ip}/24", "dev", lab.veth_server])
        _ip([*srv, "addr", "add", "fd77::1/64", "dev", lab.veth_server, "nodad"])
        _ip([*srv, "link", "set", lab.veth_server, "up"])
        _ip([*srv, "link", "set", "lo", "up"])
        rack = ["-n", lab.rack_ns]
        _ip([*rack, "link", "add", lab.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
        _ip([*rack, "link", "set", f"vr{pid}", "master", lab.bridge])
        for dev in (f"vr{pid}", lab.bridge, "lo"):
            _ip([*rack, "link", "set", dev, "up"])
        yield lab
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def wait_for_line(
    path: Path, pattern: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> str:
    """The first line of `path` matching `pattern`, polling until timeout_s."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if regex.search(line):
                    return line
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited ({proc.returncode}) before {pattern!r} in {path}")
        time.sleep(0.2)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no file)"
    raise AssertionError(f"no line matching {pattern!r} in {path} within {timeout_s} s; tail:\n{tail}")
