"""Profiles, inventory and site for test hosts whose BMCs are sushy-emulator systems.

The test profile `flow-loopback` is circle-1-limbo with what the loopback "host" can carry: no
drive classes (the emulator's fake systems expose no storage, and this machine has no spare
disks), one management NIC, and a quick plan of a few seconds. Its boot disks are pinned by WWN in
the inventory, as an operator would for a host whose BMC does not show its drives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.conftest import PROFILES
from tests.support.bmcrig import Emulator

PROFILE = "flow-loopback"


def write_profiles(
    dest: Path,
    emu: Emulator,
    boot_port: int,
    ssh_port: int | None = None,
    ssh_user: str = "root",
    cpu_s: int = 2,
) -> Path:
    """A profiles directory: the test profile, one host per emulator system, a site on loopback."""
    dest.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((PROFILES / "circle-1-limbo.yaml").read_text())
    base["name"] = PROFILE
    base["storage"] = []
    base["network"] = [{"name": "eth0", "role": "management", "speed_gbps": 1}]
    quick = {"sample_interval_s": 0.5, "suites": [{"suite": "cpu", "duration_s": cpu_s}]}
    base["burnin"] = {"quick": quick, "acceptance": quick}
    base["timeouts"] = {
        "power_s": 30,
        "install_start_s": 60,
        "install_s": 60,
        "ssh_s": 30,
        "burnin_margin_s": 120,
        "collect_s": 60,
        "poll_s": 0.5,
    }
    (dest / f"{PROFILE}.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    hosts = []
    for i, s in enumerate(emu.systems):
        hosts.append(
            {
                "name": s.name,
                "profile": PROFILE,
                "rack": "circle-1-limbo",
                "pdu": "inferno-pdu-circle1-1",
                "pdu_outlet": i + 1,
                "boot_mac": s.mac,
                "interfaces": [{"name": "eth0", "mac": s.mac, "address": "127.0.0.1/8"}],
                "bmc": {
                    "url": emu.url,
                    "system": s.path,
                    "credentials": "env:FLOW_TEST_BMC",
                    "verify_tls": False,
                    "attempts": 2,
                    "retry_delay_s": 0.1,
                    "power_timeout_s": 30,
                },
                "boot_disks": [
                    {"wwn": f"0x5002538e{i:08x}", "model": "MZ7L3960HCJR"},
                    {"wwn": f"0x5002538f{i:08x}", "model": "MZ7L3960HCJR"},
                ],
                "ssh_user": ssh_user,
                "ssh_port": ssh_port or 22,
                "address": "127.0.0.1",
            }
        )
    (dest / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
    site = yaml.safe_load((PROFILES / "site.yaml").read_text()) if (PROFILES / "site.yaml").exists() else {}
    site["boot_server_url"] = f"http://127.0.0.1:{boot_port}"
    (dest / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    golden = PROFILES / "golden"
    if golden.is_dir():
        shutil.copytree(golden, dest / "golden", dirs_exist_ok=True)
    return dest
