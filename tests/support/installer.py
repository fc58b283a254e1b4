"""The "installer" of a test host: what PXE firmware + Anaconda do, at the edges, over real HTTP.

It watches the host's BMC (the sushy-emulator system). Each time the system powers on (Off -> On)
with its boot override on Pxe, it "boots from the network": reads the iPXE URL that DHCP would hand
out (the file the controller publishes), fetches the iPXE script, takes the kickstart URL from its
kernel line, fetches the kickstart, takes the callback URL and the token from the kickstart's own
%pre, and posts `started`, then `finished` with the installed host's SSH host keys (or `failed`
with a log tail). Every install it performs is appended to --record, so a test can prove that no
install ran twice. It runs until it is stopped.

An RHCOS script (`handoff.join: rhcos`: coreos.inst.ignition_url= on its kernel line) is followed as
the live installer and the first boot would: fetch the Ignition config with the token, check it
(spec 3.4.0, the pool's merge source, the install disk among the mirror's two by-id disks), then, as
the installed RHCOS, start the kubelet's join on the test API server (--kube-url, --join-file) and
post the `installed` callback with the token and URL the config carries.

Usage: python -m tests.support.installer --bmc URL --system PATH --ipxe-url-file FILE
           --host-keys FILE --record FILE [--fail-installs N] [--poll-s 0.2]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from pathlib import Path

import requests

KS_URL = re.compile(r"inst\.ks=(\S+)")
BEARER = re.compile(r"Authorization: Bearer ([A-Za-z0-9_\-]+)")
CALLBACK = re.compile(r"(https?://\S+/callback/[A-Za-z0-9._-]+)/started")
IGNITION_URL = re.compile(r"coreos\.inst\.ignition_url=(\S+)")
INSTALL_DEV = re.compile(r"coreos\.inst\.install_dev=(\S+)")
INSTALLED_URL = re.compile(r"(https?://[^\s']+/installed)")


def post(url: str, body: str, headers: dict[str, str]) -> int:
    """POST like the kickstart's curl (--retry 5 --retry-delay 2), refused connections included:
    the boot server embedded in `provision host` is down while a killed controller restarts."""
    for attempt in range(6):
        try:
            status = requests.post(url, data=body, headers=headers, timeout=20).status_code
        except requests.ConnectionError:
            status = 0
        if status and status < 500:
            return status
        if attempt < 5:
            time.sleep(2)
    return status


def get(url: str) -> requests.Response:
    """GET with the patience of PXE firmware, which tries again when the server does not answer."""
    for _ in range(5):
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            time.sleep(2)
    return requests.get(url, timeout=10)


def power_and_target(bmc: str, system: str) -> tuple[str, str]:
    data = requests.get(f"{bmc}{system}", timeout=5).json()
    return str(data.get("PowerState")), str(data.get("Boot", {}).get("BootSourceOverrideTarget"))


def install(args: argparse.Namespace, n: int) -> dict[str, object]:
    ipxe_url = Path(args.ipxe_url_file).read_text().strip()
    script = get(ipxe_url)
    record: dict[str, object] = {"n": n, "at": time.time(), "ipxe_status": script.status_code}
    if script.status_code != 200:
        return record
    if IGNITION_URL.search(script.text):
        return install_rhcos(args, script.text, record)
    m = KS_URL.search(script.text)
    if not m:
        record["error"] = "no inst.ks= in the iPXE script"
        return record
    ks = get(m.group(1))
    record["ks_status"] = ks.status_code
    token, url = BEARER.search(ks.text), CALLBACK.search(ks.text)
    if ks.status_code != 200 or not token or not url:
        record["error"] = "no callback in the kickstart"
        return record
    headers = {"Authorization": f"Bearer {token.group(1)}", "Content-Type": "text/plain"}
    record["started_status"] = post(f"{url.group(1)}/started", "anaconda started", headers)
    time.sleep(args.install_s)
    if n <= args.fail_installs:
        tail = "anaconda: storage configuration failed: disk /dev/disk/by-id/ata-X not found\n"
        end = post(f"{url.group(1)}/failed", tail, headers)
    else:
        keys = Path(args.host_keys).read_text()
        end = post(f"{url.group(1)}/finished", keys, headers)
    record["end_status"] = end
    return record


def data_text(source: str) -> str:
    head, _, payload = source.partition(",")
    return base64.b64decode(payload).decode() if head.endswith(";base64") else payload


def ignition_problems(cfg: dict[str, object], install_dev: str) -> list[str]:
    """What the live installer and Ignition would refuse or do wrong with this config."""
    problems = []
    ign = cfg.get("ignition") or {}
    storage = cfg.get("storage") or {}
    assert isinstance(ign, dict) and isinstance(storage, dict)
    if ign.get("version") != "3.4.0":
        problems.append(f"version {ign.get('version')}")
    merge = [m.get("source", "") for m in (ign.get("config") or {}).get("merge", [])]
    if len(merge) != 1 or not re.fullmatch(r"https://api-int\.[a-z0-9.-]+:22623/config/[a-z0-9-]+", merge[0]):
        problems.append(f"merge {merge}")
    disks = [d["device"] for d in storage.get("disks", [])]
    if (
        len(disks) != 2
        or install_dev not in disks
        or not all(d.startswith("/dev/disk/by-id/") for d in disks)
    ):
        problems.append(f"disks {disks} (install on {install_dev})")
    if [r["name"] for r in storage.get("raid", [])] != ["md-boot", "md-root"]:
        problems.append("no md-boot/md-root mirror")
    if "/etc/hostname" not in {f["path"] for f in storage.get("files", [])}:
        problems.append("no /etc/hostname")
    return problems


def install_rhcos(args: argparse.Namespace, script: str, record: dict[str, object]) -> dict[str, object]:
    record["kind"] = "rhcos"
    ign_url, dev = IGNITION_URL.search(script), INSTALL_DEV.search(script)
    assert ign_url is not None
    got = get(ign_url.group(1))
    record["ignition_status"] = got.status_code
    if got.status_code != 200:
        return record
    cfg = got.json()
    problems = ignition_problems(cfg, dev.group(1) if dev else "")
    record["problems"] = problems
    if problems:
        return record
    files = {f["path"]: data_text(f["contents"]["source"]) for f in cfg["storage"]["files"]}
    header = files.get("/etc/inferno/callback.header", "").strip()
    url = INSTALLED_URL.search(cfg["systemd"]["units"][0]["contents"])
    if not header.startswith("Authorization: Bearer ") or url is None:
        record["error"] = "no callback in the Ignition config"
        return record
    time.sleep(args.install_s)
    if args.kube_url and args.join_file:  # RHCOS booted: its kubelet asks to join
        entry = Path(args.join_file).read_text()
        auth = {"Authorization": f"Bearer {args.kube_token}", "Content-Type": "application/json"}
        record["join_status"] = post(f"{args.kube_url}/control/join", entry, auth)
    name, _, value = header.partition(": ")
    keys = Path(args.host_keys).read_text()
    record["installed_status"] = post(url.group(1), keys, {name: value, "Content-Type": "text/plain"})
    return record


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bmc", required=True)
    p.add_argument("--system", required=True)
    p.add_argument("--ipxe-url-file", required=True)
    p.add_argument("--host-keys", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--fail-installs", type=int, default=0, help="the first N installs fail")
    p.add_argument("--poll-s", type=float, default=0.2)
    p.add_argument("--install-s", type=float, default=0.5)
    p.add_argument("--kube-url", help="the test API server, for the RHCOS phase's kubelet join")
    p.add_argument("--kube-token", default="")
    p.add_argument("--join-file", help="the kubeapi join entry (JSON) the installed RHCOS posts")
    args = p.parse_args()
    last_power = None
    n = 0
    while True:
        try:
            power, target = power_and_target(args.bmc, args.system)
        except requests.RequestException:
            time.sleep(args.poll_s)
            continue
        if last_power == "Off" and power == "On" and target == "Pxe":
            n += 1
            try:
                rec = install(args, n)
            except (OSError, requests.RequestException) as exc:
                rec = {"n": n, "error": str(exc)}
            with open(args.record, "a") as out:
                out.write(json.dumps(rec) + "\n")
        last_power = power
        time.sleep(args.poll_s)


if __name__ == "__main__":
    sys.exit(main())
