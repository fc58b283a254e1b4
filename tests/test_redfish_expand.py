"""Fewer requests per inspection: the test server's `$expand` (DSP0266, to the letter), the resource
cache over it (each resource asked for once, collections with their members in one request), and the
request counts of a full inspection of the compute host both ways, with the same inventory."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.bmc.cache import EXPAND, ResourceCache, expand_supported
from provision.bmc.credentials import Credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.redfish import connect
from provision.bmc.types import BmcHttpError
from provision.model.catalog import load_catalog
from provision.model.hosts import Bmc
from tests.conftest import PROFILES
from tests.support.expand_rig import ExpandService, expand_service
from tests.support.mockup import Style, build_tree, write_tree
from tests.support.redfish_rig import cli, set_bmc

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)
MAX_EXPANDED = 25  # issue 14: a full inspection of the compute host where $expand is offered


def _get(svc: ExpandService, target: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(svc.url + target, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def mockup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(build_tree(PROFILE, HOST), tmp_path_factory.mktemp("expand") / "mockup")


@pytest.fixture(scope="module")
def service(mockup: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpandService]:
    with expand_service(mockup, tmp_path_factory.mktemp("svc")) as svc:
        yield svc


# -- the server: $expand as DSP0266 says -------------------------------------------------------------


def test_the_root_advertises_expand_query(service: ExpandService) -> None:
    status, root = _get(service, "/redfish/v1/")
    assert status == 200 and expand_supported(root)
    assert root["ProtocolFeaturesSupported"]["ExpandQuery"]["MaxLevels"] >= 1


def test_dot_expands_members_but_not_links(service: ExpandService) -> None:
    _, memory = _get(service, "/redfish/v1/Systems/1/Memory")
    _, coll = _get(service, "/redfish/v1/Systems/1/Memory?$expand=.")  # no ($levels): one level
    assert [m["@odata.id"] for m in coll["Members"]] == [m["@odata.id"] for m in memory["Members"]]
    assert all("CapacityMiB" in m or "Status" in m for m in coll["Members"])
    _, plain = _get(service, "/redfish/v1/Chassis/1")
    _, chassis = _get(service, "/redfish/v1/Chassis/1?$expand=.($levels=1)")
    assert "PowerControl" in chassis["Power"]  # a navigation property outside Links: expanded
    assert chassis["Links"] == plain["Links"]  # Links untouched
    assert all(set(m) == {"@odata.id"} for m in chassis["PCIeDevices"].get("Members", []))  # one level only


def test_tilde_expands_only_links_and_star_both(service: ExpandService) -> None:
    _, plain = _get(service, "/redfish/v1/Chassis/1")
    _, tilde = _get(service, "/redfish/v1/Chassis/1?$expand=~")
    systems = tilde["Links"]["ComputerSystems"]
    assert systems and all("Boot" in s for s in systems if s["@odata.id"].endswith("Systems/1"))
    assert tilde["Power"] == plain["Power"]
    _, star = _get(service, "/redfish/v1/Chassis/1?$expand=*")
    assert "PowerControl" in star["Power"] and "Boot" in star["Links"]["ComputerSystems"][0]


def test_levels_count_from_the_resource_asked_for(service: ExpandService) -> None:
    _, two = _get(service, "/redfish/v1/Systems?$expand=.($levels=2)")
    system = two["Members"][0]  # level 1
    assert system["Processors"]["Members"] and all(  # level 2: the collection, its members references
        set(m) == {"@odata.id"} for m in system["Processors"]["Members"]
    )
    assert all(set(c) == {"@odata.id"} for c in system["Links"].get("Chassis", []))
    _, three = _get(service, "/redfish/v1/Systems?$expand=.($levels=3)")
    assert all("ProcessorType" in m for m in three["Members"][0]["Processors"]["Members"])


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("$expand=.($levels=0)", 400, "QueryParameterOutOfRange"),
        ("$expand=.($levels=99)", 400, "QueryParameterOutOfRange"),
        ("$expand=everything", 400, "QueryParameterValueFormatError"),
        ("$select=Id", 501, "QueryNotSupported"),
    ],
)
def test_bad_queries_are_refused_as_dsp0266_says(
    service: ExpandService, query: str, status: int, says: str
) -> None:
    got, body = _get(service, f"/redfish/v1/Systems?{query}")
    assert got == status and says in body["error"]["code"]


def test_without_expand_the_root_says_nothing_and_the_query_is_refused(mockup: Path, tmp_path: Path) -> None:
    with expand_service(mockup, tmp_path, expand=False) as svc:
        _, root = _get(svc, "/redfish/v1/")
        assert not expand_supported(root)
        assert _get(svc, f"/redfish/v1/Systems?{EXPAND}")[0] == 501


# -- the cache, over a tree in memory --------------------------------------------------------------


class Counting:
    """A `get` over an in-memory tree that expands as the server does, and counts."""

    def __init__(self, tree: dict[str, Any], *, refuse_expand: bool = False, delay_s: float = 0.0) -> None:
        from tests.support.expand_server import expand

        self.tree, self.refuse, self.delay_s = tree, refuse_expand, delay_s
        self.asked: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self._expand = expand

    def __call__(self, target: str) -> dict[str, Any] | None:
        with self._lock:
            self.asked.append(target)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            path, _, query = target.partition("?")
            doc = self.tree.get(path.rstrip("/"))
            if query and self.refuse:
                raise BmcHttpError(f"{target}: HTTP 501", 501)
            if doc is not None and query:
                doc = self._expand(doc, ".", 1, lambda p: self.tree.get(p.rstrip("/")))
            return doc
        finally:
            with self._lock:
                self.in_flight -= 1


def _tree(style: Style = Style.supermicro) -> dict[str, Any]:
    tree = build_tree(PROFILE, HOST, style)
    root = dict(tree["/redfish/v1"])
    root["ProtocolFeaturesSupported"] = {"ExpandQuery": {"Levels": True, "NoLinks": True, "MaxLevels": 3}}
    return {**tree, "/redfish/v1": root}


@pytest.mark.parametrize("style", list(Style))
def test_the_cache_hands_the_walker_the_same_documents_in_fewer_requests(style: Style) -> None:
    tree = _tree(style)
    plain_get, expand_get = Counting(tree), Counting(tree)
    with ResourceCache(plain_get, expand=False, workers=1) as plain:
        slow = collect_inventory(plain)
    with ResourceCache(expand_get) as fast:
        quick = collect_inventory(fast)
    assert fast.expanding and not plain.expanding
    assert quick.to_dict() | {"collected_at": 0} == slow.to_dict() | {"collected_at": 0}
    for got in (plain_get, expand_get):
        paths = [a.partition("?")[0].rstrip("/") for a in got.asked]
        assert len(paths) == len(set(paths)), "a resource was asked for twice"
    assert len(expand_get.asked) <= MAX_EXPANDED < len(plain_get.asked)


def test_a_path_asked_twice_or_with_a_slash_is_one_request_and_404s_are_remembered() -> None:
    get = Counting(_tree())
    cache = ResourceCache(get, expand=False, workers=1)
    assert cache("/redfish/v1/Systems/1") == cache("/redfish/v1/Systems/1/")
    assert cache("/redfish/v1/Nothing") is None and cache("/redfish/v1/Nothing/") is None
    assert get.asked == ["/redfish/v1/Systems/1", "/redfish/v1/Nothing"]


def test_the_root_read_at_connect_is_not_asked_for_again() -> None:
    tree = _tree()
    get = Counting(tree)
    cache = ResourceCache(get, root=tree["/redfish/v1"])
    assert cache("/redfish/v1/") == tree["/redfish/v1"] and get.asked == [] and cache.expanding


def test_a_service_that_advertises_expand_but_refuses_it_is_read_plainly() -> None:
    get = Counting(_tree(), refuse_expand=True)
    cache = ResourceCache(get, workers=1)
    inv = collect_inventory(cache)
    assert len(inv.dimms) == 24 and not cache.expanding
    assert get.asked[1] == f"/redfish/v1/Systems?{EXPAND}" and "?" not in "".join(get.asked[2:])


def test_an_expanded_answer_is_folded_back_and_fragments_stay_inline() -> None:
    tree = copy.deepcopy(_tree())
    tree["/redfish/v1/Chassis/1/Power"]["PowerControl"][0]["@odata.id"] = (
        "/redfish/v1/Chassis/1/Power#/PowerControl/0"
    )
    get = Counting(tree)
    cache = ResourceCache(get)
    chassis = cache("/redfish/v1/Chassis/1")
    assert chassis is not None and chassis["Power"] == {"@odata.id": "/redfish/v1/Chassis/1/Power"}
    power = cache("/redfish/v1/Chassis/1/Power")  # came with the chassis
    assert power is not None and power["PowerControl"][0]["@odata.id"].count("#") == 1
    assert len(get.asked) == 2  # the root, then the chassis


def test_the_pool_bounds_requests_in_flight_to_one_bmc() -> None:
    get = Counting(_tree(), delay_s=0.02)
    with ResourceCache(get, expand=False, workers=3) as cache:
        collect_inventory(cache)
    assert 1 < get.most_in_flight <= 3


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="workers: expected at least 1, got 0"):
        ResourceCache(Counting({}), workers=0)


# -- a full inspection over HTTP, counted by the server --------------------------------------------


def _inspect(svc: ExpandService, *, workers: int = 4) -> tuple[dict[str, Any], list[str]]:
    svc.reset()
    bmc = Bmc(url=svc.url, credentials="env:UNUSED", auth="basic", retry_delay_s=0.05)
    with (
        connect(bmc, credentials=Credentials("admin", "secret")) as client,
        client.resources(workers=workers) as fetch,
    ):
        inv = collect_inventory(fetch)
    return inv.to_dict() | {"collected_at": 0}, svc.requests()


def test_compute_host_inspection_counts_both_ways_with_the_same_inventory(
    mockup: Path, service: ExpandService, tmp_path: Path
) -> None:
    resources = len(list(mockup.rglob("index.json")))
    expanded_inv, expanded = _inspect(service)
    with expand_service(mockup, tmp_path, expand=False) as plain_svc:
        plain_inv, plain = _inspect(plain_svc)
    assert expanded_inv == plain_inv
    assert len(expanded) <= MAX_EXPANDED, expanded
    unique = {r.partition("?")[0].rstrip("/") for r in plain}
    assert len(plain) == len(unique) <= resources, "without $expand: at most one request per resource"
    assert expanded.count("/redfish/v1/") == 1 and plain.count("/redfish/v1/") == 1  # the connect's


def test_provision_inspect_uses_expand(
    mockup: Path,
    service: ExpandService,
    profiles_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")
    set_bmc(profiles_copy, HOST.name, url=service.url, auth="basic", retry_delay_s=0.05)
    service.reset()
    argv = [
        "--profiles",
        str(profiles_copy),
        "--state",
        str(tmp_path / "state"),
        "inspect",
        HOST.name,
        "--json",
    ]
    rc, out, err = cli(argv, capsys)
    data = json.loads(out)
    assert rc == 0, err
    assert len(data["inventory"]["dimms"]) >= 24 and len(data["inventory"]["gpus"]) == 4
    gets = service.requests()
    assert len(gets) <= MAX_EXPANDED and any("$expand" in g for g in gets)
