"""Profiles, inventory and site for test hosts whose BMCs are sushy-emulator systems.

The test profile `flow-loopback` is circle-1-limbo with what the loopback "host" can carry: no
drive classes (the emulator's fake systems expose no storage, and this machine has no spare
disks), one management NIC, and a quick plan of a few seconds. Its boot disks are pinned by WWN in
the inventory, as an operator would for a host whose BMC does not show its drives.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from provision.model.catalog import load_catalog
from tests.conftest import PROFILES
from tests.support.bmcrig import Emulator
from tests.support.machine_profile import machine_profile, management_nic
from tests.support.mockup import build_tree

PROFILE = "flow-loopback"
COMPUTE = "flow-compute"


def write_profiles(
    dest: Path,
    emu: Emulator,
    boot_port: int,
    ssh_port: int | None = None,
    ssh_user: str = "root",
    cpu_s: int = 2,
    compute: bool = False,
    machine: dict[str, Any] | None = None,
) -> Path:
    """A profiles directory: the test profile, one host per emulator system, a site on loopback.

    compute: the host is a copy of inferno-host-compute-1 (profile circle-2-lust with a short quick
    plan), whose hardware a mockup tree shows; its boot disks come from inspection.
    machine: the agent's inventory of this machine (tests.support.machine_profile): the profile is
    this machine, so the host can be accepted; the BMC's systems must carry its NIC's MAC.
    """
    dest.mkdir(parents=True, exist_ok=True)
    seed = "circle-2-lust" if compute else "circle-1-limbo"
    base = yaml.safe_load((PROFILES / f"{seed}.yaml").read_text())
    base["name"] = COMPUTE if compute else PROFILE
    suites: list[dict[str, Any]] = [{"suite": "cpu", "duration_s": cpu_s}]
    if compute:
        suites.append({"suite": "gpu", "duration_s": 1})
    else:
        base["storage"] = []
        base["network"] = [{"name": "eth0", "role": "management", "speed_gbps": 1}]
    quick = {"sample_interval_s": 0.5, "suites": suites}
    base["burnin"] = {"quick": quick, "acceptance": quick}
    if machine is not None:
        base = machine_profile(base, machine, cpu_s)
    base["timeouts"] = {
        "power_s": 30,
        "install_start_s": 60,
        "install_s": 60,
        "ssh_s": 30,
        "burnin_margin_s": 120,
        "collect_s": 60,
        "poll_s": 0.5,
    }
    (dest / f"{base['name']}.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    seed_hosts = yaml.safe_load((PROFILES / "hosts.yaml").read_text())["hosts"]
    compute_1 = next(h for h in seed_hosts if h["name"] == "inferno-host-compute-1")
    hosts = []
    for i, s in enumerate(emu.systems):
        hosts.append(
            {
                "name": s.name,
                "profile": base["name"],
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
                "boot_disks": []
                if compute
                else [
                    {"wwn": f"0x5002538e{i:08x}", "model": "MZ7L3960HCJR"},
                    {"wwn": f"0x5002538f{i:08x}", "model": "MZ7L3960HCJR"},
                ],
                "ssh_user": ssh_user,
                "ssh_port": ssh_port or 22,
                "address": "127.0.0.1",
            }
        )
        if machine is not None:
            mac = management_nic(machine)["mac"]
            hosts[-1]["boot_mac"] = mac
            hosts[-1]["interfaces"] = [{"name": "eth0", "mac": mac, "address": "127.0.0.1/8"}]
        if compute:
            hosts[-1]["boot_mac"] = compute_1["boot_mac"]
            hosts[-1]["interfaces"] = [
                {
                    "name": n["name"],
                    "mac": n["mac"],
                    "address": "127.0.0.1/8" if n["name"] == "eth0" else n.get("address"),
                }
                for n in compute_1["interfaces"]
            ]
    (dest / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
    site = yaml.safe_load((PROFILES / "site.yaml").read_text()) if (PROFILES / "site.yaml").exists() else {}
    site["boot_server_url"] = f"http://127.0.0.1:{boot_port}"
    (dest / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    golden = PROFILES / "golden"
    if golden.is_dir():
        shutil.copytree(golden, dest / "golden", dirs_exist_ok=True)
    return dest


def write_tree(profiles: Path, host: str, dest: Path) -> Path:
    """The host's Redfish mockup tree (tests.support.mockup, Supermicro style) as one JSON file."""
    catalog = load_catalog(profiles)
    entry = catalog.host(host)
    tree = build_tree(catalog.profile_of(entry), entry)
    dest.write_text(json.dumps(tree))
    return dest


def swap_parts(tree_file: Path) -> tuple[str, str]:
    """Replace one DIMM and one GPU in the tree (new serials, same slots); return their paths."""
    tree = json.loads(tree_file.read_text())
    dimm = next(
        p
        for p, d in sorted(tree.items())
        if "/Memory/" in p and d.get("Status", {}).get("State") == "Enabled"
    )
    gpu = next(p for p, d in sorted(tree.items()) if "/Processors/" in p and d.get("ProcessorType") == "GPU")
    for path in (dimm, gpu):
        tree[path]["SerialNumber"] = tree[path]["SerialNumber"] + "-NEW"
    tree_file.write_text(json.dumps(tree))
    return dimm, gpu
