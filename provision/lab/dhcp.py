"""The lab's DHCP supervisor: runs dnsmasq and restarts it when a host's iPXE URL changes.

`provision host` publishes each host's iPXE script URL, with the run's token, in
<state>/netboot/<host>.url (0600) for "the DHCP side". dnsmasq cannot reload dhcp-boot lines, so
this process renders the whole config again and restarts its dnsmasq (by PID) on every change.
It writes dnsmasq's PID to <lab>/dnsmasq.pid so `lab down` can stop it even if this one died.

Run as `python -m provision.lab.dhcp LABDIR NETBOOTDIR BOOTURL LABID` inside the lab's srv netns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from provision.lab.netconf import render_dnsmasq, script_urls
from provision.lab.spec import NODES, LabNet
from provision.model.files import write_private

POLL_S = 0.3


def published(netboot: Path) -> dict[str, str]:
    urls: dict[str, str] = {}
    for path in sorted(netboot.glob("*.url")):
        try:
            url = path.read_text().strip()
        except OSError:
            continue
        if url and not any(c in url for c in " \"',\n"):
            urls[path.stem] = url
    return urls


class Supervisor:
    def __init__(self, lab_dir: Path, netboot: Path, boot_url: str, lab_id: str) -> None:
        self.lab_dir, self.netboot, self.boot_url = lab_dir, netboot, boot_url
        self.net = LabNet(lab_id)
        self.conf = lab_dir / "dnsmasq.conf"
        self.pidfile = lab_dir / "dnsmasq.pid"
        self.child: subprocess.Popen[bytes] | None = None
        self.running_conf = ""
        self.stopping = False

    def render(self) -> str:
        urls = script_urls(NODES, self.boot_url, published(self.netboot))
        return render_dnsmasq(
            self.net,
            NODES,
            tftp_root=self.lab_dir / "tftp",
            leases=self.lab_dir / "dnsmasq.leases",
            urls=urls,
        )

    def start(self, text: str) -> None:
        write_private(self.conf, text.encode())  # it holds the hosts' run tokens
        log = open(self.lab_dir / "logs" / "dnsmasq.out", "ab")  # noqa: SIM115 - the child owns it
        self.child = subprocess.Popen(
            [
                "dnsmasq",
                "-k",
                f"--conf-file={self.conf}",
                f"--log-facility={self.lab_dir / 'logs' / 'dnsmasq.log'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.pidfile.write_text(f"{self.child.pid}\n")
        self.running_conf = text
        print(
            f"dhcp: dnsmasq pid {self.child.pid} ({len(published(self.netboot))} published URL(s))",
            flush=True,
        )

    def stop_child(self) -> None:
        if self.child is None:
            return
        self.child.terminate()
        try:
            self.child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait(timeout=5)
        self.child = None
        self.pidfile.unlink(missing_ok=True)

    def loop(self) -> int:
        while not self.stopping:
            text = self.render()
            if self.child is not None and self.child.poll() is not None:
                print(f"dhcp: dnsmasq exited with {self.child.returncode}; restarting", flush=True)
                self.child = None
                time.sleep(1)
            if self.child is None or text != self.running_conf:
                self.stop_child()
                self.start(text)
            time.sleep(POLL_S)
        self.stop_child()
        return 0


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m provision.lab.dhcp LABDIR NETBOOTDIR BOOTURL LABID", file=sys.stderr)
        return 2
    sup = Supervisor(Path(argv[0]), Path(argv[1]), argv[2], argv[3])

    def _stop(signum: int, frame: FrameType | None) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return sup.loop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
