"""One BMC fronting many Systems (a multi-node chassis; the fleet's emulators, 25 systems each):
an inspection reads what is the host's only, so its requests do not grow with the other nodes.
Counted by the server: sushy-emulator's access log. The host's manager is the one its System
names (Links.ManagedBy), a GPU baseboard its manager serves is still found, and another manager's
node linked from the same chassis is never read."""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any

from provision.bmc.credentials import Credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.posture import read_posture
from provision.bmc.redfish import connect
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from tests.conftest import PROFILES
from tests.support.bmcrig import emulator, fake_systems
from tests.support.mockup import Style, build_tree

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)
GET = re.compile(r'"GET (\S+) HTTP')


def inspect_one(tmp_path: Path, nodes: int) -> tuple[list[str], str | None, str, dict[str, str]]:
    """Inspect one host (inventory and posture, through one inspection's cache, as the flow does)
    on an emulator holding `nodes` systems: the paths asked, the manager found, the host's own
    manager, and the inventory's gaps."""
    systems = fake_systems([f"node-{i}" for i in range(nodes)])
    host = systems[nodes // 2]
    with emulator(tmp_path / f"bmc-{nodes}", systems) as emu:
        before = len(emu.log.read_text(errors="replace").splitlines())
        bmc = Bmc(url=emu.url, credentials="env:UNUSED", auth="basic", system=host.path)
        with connect(bmc, credentials=Credentials("admin", "pw")) as client, client.resources() as fetch:
            inv = collect_inventory(fetch, bmc.system)
            posture = read_posture(fetch, bmc.system)
        own = emu.system(host)["Links"]["ManagedBy"][0]["@odata.id"]  # type: ignore[index]
        lines = emu.log.read_text(errors="replace").splitlines()[before:]
    asked = [m.group(1) for line in lines if (m := GET.search(line))]
    return asked[:-1], posture.manager, str(own), inv.gaps  # the last GET is the test's own


def test_an_inspection_reads_the_same_on_a_bmc_of_2_or_12_systems(tmp_path: Path) -> None:
    small, small_mgr, small_own, _ = inspect_one(tmp_path, 2)
    large, large_mgr, large_own, gaps = inspect_one(tmp_path, 12)
    assert len(large) == len(small), Counter(large) - Counter(small)
    assert (small_mgr, large_mgr) == (small_own, large_own)  # the host's manager, not the first listed
    systems = {p.split("/")[4] for p in large if p.startswith("/redfish/v1/Systems/")}
    managers = {p for p in large if p.startswith("/redfish/v1/Managers/")}
    assert len(systems) == 1 and managers == {large_own}
    assert gaps["systems"].startswith("skipped /redfish/v1/Systems/")
    assert "and 7 more: another manager's system" in gaps["systems"]  # 11 others, 4 named


def _two_nodes_and_a_baseboard() -> dict[str, Any]:
    """The HGX layout (a GPU baseboard System linked from the host's chassis and served by its
    manager), plus a second node linked from the same chassis but served by a manager of its own."""
    tree: dict[str, Any] = copy.deepcopy(build_tree(PROFILE, HOST, Style.dmtf))
    node2, mgr2 = "/redfish/v1/Systems/2", "/redfish/v1/Managers/2"
    tree[node2] = {**tree["/redfish/v1/Systems/1"], "@odata.id": node2, "Id": "2"}
    tree[node2]["Links"] = {**tree[node2]["Links"], "ManagedBy": [{"@odata.id": mgr2}]}
    tree[mgr2] = {"@odata.id": mgr2, "Id": "2", "Links": {"ManagerForServers": [{"@odata.id": node2}]}}
    tree["/redfish/v1/Systems"]["Members"].append({"@odata.id": node2})
    tree["/redfish/v1/Managers"]["Members"].append({"@odata.id": mgr2})
    chassis = tree["/redfish/v1/Systems/1"]["Links"]["Chassis"][0]["@odata.id"]
    tree[chassis]["Links"]["ComputerSystems"].append({"@odata.id": node2})
    return tree


def test_the_baseboard_the_hosts_manager_serves_is_read_and_another_node_is_not() -> None:
    tree = _two_nodes_and_a_baseboard()
    asked: list[str] = []

    def fetch(path: str) -> Any:
        asked.append(path.rstrip("/"))
        return tree.get(path.rstrip("/"))

    inv = collect_inventory(fetch, "/redfish/v1/Systems/1")
    posture = read_posture(fetch, "/redfish/v1/Systems/1")
    assert [e.role for e in inv.enclosures if e.path.startswith("/redfish/v1/Systems/")] == [
        "host",
        "baseboard",
    ]
    assert len(inv.gpus) == len(build_inventory_gpus()) > 0
    assert not [p for p in asked if p.startswith(("/redfish/v1/Systems/2", "/redfish/v1/Managers/2"))]
    assert inv.gaps["systems"] == "skipped /redfish/v1/Systems/2: another manager's system"
    assert posture.manager == "/redfish/v1/Managers/1"


def build_inventory_gpus() -> list[Any]:
    """The GPUs of the plain HGX layout (one node), for comparison."""
    tree = build_tree(PROFILE, HOST, Style.dmtf)
    return list(collect_inventory(lambda p: tree.get(p.rstrip("/")), "/redfish/v1/Systems/1").gpus)
