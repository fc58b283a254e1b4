"""The Redfish walker and the pre-OS checks, over mockup trees held in memory (no server): every
layout x every fault, and what the BMC leaves out turning into gaps and inconclusive findings."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from burnin.hardware import inventory_from_dict
from burnin.schema import Verdict
from provision.acceptance.inspection import check_drives, check_gpus, check_memory, inspect_findings
from provision.bmc.credentials import Credentials, read_credentials
from provision.bmc.inventory import collect_inventory
from provision.bmc.types import BmcBadDocument, RetryPolicy
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import PROFILES
from tests.support.mockup import Faults, Style, build_tree

CATALOG = load_catalog(PROFILES)
HOST = CATALOG.host("inferno-host-compute-1")
PROFILE = CATALOG.profile_of(HOST)


def _inventory(style: Style, faults: Faults | None = None, edit: Any = None) -> Any:
    tree = copy.deepcopy(build_tree(PROFILE, HOST, style, faults or Faults()))
    if edit:
        edit(tree)
    return collect_inventory(lambda path: tree.get(path.rstrip("/")))  # as sushy-static serves it


def _failed(inv: Any) -> set[str]:
    return {f.id for f in inspect_findings(PROFILE, inv, HOST) if f.verdict is Verdict.FAIL}


@pytest.mark.parametrize("style", list(Style))
def test_every_layout_normalizes_to_the_same_parts(style: Style) -> None:
    inv = _inventory(style)
    # iLO shows no host NIC before its OS agent runs, and its GPUs only as PCIe devices: both said.
    nics, gaps = (0, {"nics", "gpus"}) if style is Style.hpe else (3, set())
    assert (len(inv.cpus), len(inv.gpus), len(inv.drives), len(inv.nics)) == (2, 4, 6, nics)
    assert set(inv.gaps) == gaps
    assert len([d for d in inv.dimms if d.present]) == 24
    assert {(g.pci_device_id, g.pcie_gen_current, g.pcie_width_current) for g in inv.gpus} == {
        ("0x2bb4", 5, 16)
    }
    assert inv.logical_cpus == 384 and inv.memory_total_mib == 768 * 1024
    if style is Style.dmtf:  # read off the GPU's own Processor (HGX shape); its HBM is not a DIMM
        assert PROFILE.gpus is not None
        assert (inv.gpus[0].slot, inv.gpus[0].memory_mib) == ("SXM1", PROFILE.gpus.memory_mib)
        assert all(d.type == "DDR5" for d in inv.dimms if d.present)
    assert _failed(inv) == set()
    assert inventory_from_dict(inv.to_dict()) == inv  # the shared model round-trips


# (fault, the finding ids that must fail) per layout; Dell lists no empty slot, so no slot is named.
FAULTS = [
    (Faults(missing_dimm=0), {"supermicro": "dimm_present:dimm:P1-DIMMA1", "dell": "dimm_count:memory",
                              "dmtf": "dimm_present:dimm:P1-DIMMA1",
                              "hpe": "dimm_present:dimm:PROC 1 DIMM 1"}),
    (Faults(gpu_link=(0, 4, 16)), {"supermicro": "gpu_pcie_link:gpu:GPU1 (SLOT1, serial GPUIHC1000)",
                                   "dell": "gpu_pcie_link:gpu:Video.Slot.1-1 (SLOT1, serial GPUIHC1000)",
                                   "dmtf": "gpu_pcie_link:gpu:GPU_SXM_1 (SXM1, serial GPUIHC1000)",
                                   "hpe": "gpu_pcie_link:gpu:GPU1 (SLOT1, serial GPUIHC1000)"}),
    (Faults(drive_bytes=(0, 480103981056)), {"supermicro": "drive_capacity:drive:Disk0 "
                                                           "(serial S6KLNA0W100201)",
                                             "dell": "drive_capacity:drive:Disk.Bay.0-Enclosure.Internal.0-1 "
                                                     "(serial S6KLNA0W100201)",
                                             "dmtf": "drive_capacity:drive:Disk0 (serial S6KLNA0W100201)",
                                             "hpe": "drive_capacity:drive:Disk0 (serial S6KLNA0W100201)"}),
]  # fmt: skip


@pytest.mark.parametrize("style", list(Style))
@pytest.mark.parametrize(("faults", "expected"), FAULTS)
def test_each_fault_fails_the_finding_that_names_the_part(
    style: Style, faults: Faults, expected: dict[str, str]
) -> None:
    failed = _failed(_inventory(style, faults))
    assert expected[style.value] in failed


def test_a_missing_dimm_on_a_bmc_that_lists_only_installed_ones_names_its_channel() -> None:
    inv = _inventory(Style.dell, Faults(missing_dimm=5))
    socket = next(f for f in check_memory(PROFILE, inv) if f.check == "dimm_count_socket")
    assert (socket.component, socket.observed) == ("memory:socket 1", "11 populated (empty: channel 6)")


def test_an_empty_slot_is_named_even_without_socket_information() -> None:
    def like_a_real_supermicro(tree: dict[str, Any]) -> None:
        # bmclib's captured Supermicro DIMM: Id "DIMM1", no DeviceLocator, no MemoryLocation.
        for path, doc in tree.items():
            if "/Memory/" in path:
                doc.pop("DeviceLocator", None)
                doc.pop("MemoryLocation", None)

    inv = _inventory(Style.supermicro, Faults(missing_dimm=3), edit=like_a_real_supermicro)
    failed = {f.id for f in check_memory(PROFILE, inv) if f.verdict is Verdict.FAIL}
    assert failed == {"dimm_count:memory", "dimm_present:dimm:P1-DIMMD1"}  # the Id names the slot


def test_a_gpu_link_lanes_short_fails_and_a_faster_one_passes() -> None:
    narrow = check_gpus(PROFILE, _inventory(Style.supermicro, Faults(gpu_link=(1, 5, 8))))
    assert [(f.component, f.observed) for f in narrow if f.verdict is Verdict.FAIL] == [
        ("gpu:GPU2 (SLOT2, serial GPUIHC1001)", "Gen5 x8")
    ]
    faster = check_gpus(PROFILE, _inventory(Style.supermicro, Faults(gpu_link=(1, 6, 16))))
    assert {f.verdict for f in faster} == {Verdict.PASS}


def _drop(*paths: str, key: tuple[str, str] | None = None) -> Any:
    def edit(tree: dict[str, Any]) -> None:
        for p in paths:
            tree.pop(p, None)
        if key:
            tree[key[0]].pop(key[1], None)

    return edit


def test_what_the_bmc_hides_is_inconclusive_never_pass() -> None:
    sys1 = "/redfish/v1/Systems/1"
    inv = _inventory(Style.supermicro, edit=_drop(key=(sys1, "Memory")))
    assert "memory" in inv.gaps
    assert [(f.check, f.verdict) for f in check_memory(PROFILE, inv)] == [
        ("dimm_count", Verdict.INCONCLUSIVE)
    ]

    # GPUs with no PCIe device behind them: present, but link and ids unknown.
    def no_pcie(tree: dict[str, Any]) -> None:
        for path in [p for p in tree if "/PCIeDevices/" in p]:
            del tree[path]

    inv = _inventory(Style.dell, edit=no_pcie)
    links = [f for f in check_gpus(PROFILE, inv) if f.check in ("gpu_pcie_link", "gpu_pci_device_id")]
    assert links and {f.verdict for f in links} == {Verdict.INCONCLUSIVE}
    assert links[0].observed == "not exposed by the BMC"
    assert "gpu:Video.Slot.1-1" in inv.gaps

    inv = _inventory(Style.supermicro, Faults(simple_storage_only=True))
    assert {f.verdict for f in check_drives(PROFILE, inv, HOST) if f.check == "drive_count"} == {
        Verdict.INCONCLUSIVE
    }
    assert [d.capacity_bytes for d in inv.drives][:1] == [960197124096]


def test_no_gpu_is_a_failure_only_where_the_bmc_shows_its_pcie_devices() -> None:
    def no_gpu_processors(tree: dict[str, Any]) -> None:
        coll = tree["/redfish/v1/Systems/1/Processors"]
        coll["Members"] = [m for m in coll["Members"] if "GPU" not in m["@odata.id"]]

    def no_gpus_at_all(tree: dict[str, Any]) -> None:
        no_gpu_processors(tree)
        for path in [p for p in tree if "/PCIeDevices/GPU" in p]:
            del tree[path]
        tree["/redfish/v1/Chassis/1/PCIeDevices"]["Members"] = []

    def nic_only(tree: dict[str, Any]) -> None:
        no_gpus_at_all(tree)
        nic = "/redfish/v1/Chassis/1/PCIeDevices/NIC1"
        tree[nic] = {"@odata.id": nic, "Id": "NIC1", "PCIeInterface": {"PCIeType": "Gen4", "LanesInUse": 16}}
        tree["/redfish/v1/Chassis/1/PCIeDevices"]["Members"] = [{"@odata.id": nic}]

    hidden = check_gpus(PROFILE, _inventory(Style.supermicro, edit=no_gpus_at_all))
    assert [(f.check, f.verdict) for f in hidden] == [("gpu_count", Verdict.INCONCLUSIVE)]
    missing = check_gpus(PROFILE, _inventory(Style.supermicro, edit=nic_only))
    assert [(f.check, f.verdict, f.observed) for f in missing] == [
        ("gpu_count", Verdict.FAIL, "0 (none among the PCIe devices)")
    ]


def test_a_500_on_one_resource_is_a_gap_and_the_rest_is_read() -> None:
    from provision.bmc.redfish import BmcHttpError

    tree = build_tree(PROFILE, HOST)

    def fetch(path: str) -> Any:
        if path == "/redfish/v1/Systems/1/Storage":
            raise BmcHttpError(f"http://bmc{path}: GET failed after 4 attempt(s): HTTP 500: boom", 500)
        return tree.get(path)

    inv = collect_inventory(fetch)
    assert "HTTP 500" in inv.gaps["storage"] and inv.drives == [] and len(inv.gpus) == 4

    def garbled(path: str) -> Any:
        if path.endswith("/Memory/P1-DIMMA1"):
            raise BmcBadDocument(f"http://bmc{path}: GET: unexpected answer from the BMC: Expecting value")
        return tree.get(path)

    inv = collect_inventory(garbled)
    assert "P1-DIMMA1" in inv.gaps["memory"] and len(inv.dimms) == 23
    finding = next(f for f in check_memory(PROFILE, inv) if f.id == "dimm_count:memory")
    # One DIMM unreadable is one DIMM not proven present, nor proven missing: inconclusive (which
    # blocks acceptance all the same), with the BMC's failure named in the finding.
    assert finding.verdict is Verdict.INCONCLUSIVE and "P1-DIMMA1" in finding.observed


def test_a_dead_bmc_mid_walk_is_an_error_not_a_gap() -> None:
    from provision.bmc.redfish import BmcHttpError

    tree = build_tree(PROFILE, HOST)

    def fetch(path: str) -> Any:
        if "Storage" in path:
            raise BmcHttpError(f"http://bmc{path}: GET failed after 4 attempt(s): connection refused", None)
        return tree.get(path)

    with pytest.raises(BmcHttpError, match="connection refused"):
        collect_inventory(fetch)


def test_gpus_listed_only_as_pcie_devices_are_still_found() -> None:
    def edit(tree: dict[str, Any]) -> None:
        coll = tree["/redfish/v1/Systems/1/Processors"]
        coll["Members"] = [m for m in coll["Members"] if "GPU" not in m["@odata.id"]]

    inv = _inventory(Style.supermicro, edit=edit)
    assert [g.index for g in inv.gpus] == ["GPU1", "GPU2", "GPU3", "GPU4"]
    assert "gpus" in inv.gaps


def test_credentials_from_env_and_file_and_their_errors(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BMC_X", "admin:s3cret:with:colons")
    creds = read_credentials("env:BMC_X")
    assert creds == Credentials("admin", "s3cret:with:colons")
    assert "s3cret" not in repr(creds) and "s3cret" not in str(creds)
    (tmp_path / "c").write_text("root:pw\n")
    assert read_credentials(f"file:{tmp_path / 'c'}") == Credentials("root", "pw")
    with pytest.raises(BadInput, match=r"expected a readable file .*/nope, got No such file or directory"):
        read_credentials(f"file:{tmp_path / 'nope'}")
    monkeypatch.setenv("BMC_X", "admin:")
    with pytest.raises(BadInput, match="expected 'user:password' in env:BMC_X, got a value without both"):
        read_credentials("env:BMC_X")


def test_retry_policy_backs_off_and_is_bounded() -> None:
    assert list(RetryPolicy(attempts=5, delay_s=1.0, max_delay_s=3.0).delays()) == [1.0, 2.0, 3.0, 3.0]
    assert list(RetryPolicy(attempts=1).delays()) == []


def test_another_bootable_system_behind_the_bmc_is_not_counted_as_ours() -> None:
    tree = copy.deepcopy(build_tree(PROFILE, HOST, Style.supermicro))
    other = "/redfish/v1/Systems/2"
    tree[other] = {**tree["/redfish/v1/Systems/1"], "@odata.id": other, "Id": "2"}
    tree["/redfish/v1/Systems"]["Members"].append({"@odata.id": other})
    inv = collect_inventory(tree.get, host_system="/redfish/v1/Systems/1")
    assert len(inv.cpus) == 2 and len(inv.gpus) == 4  # not doubled by node 2
    assert "skipped /redfish/v1/Systems/2" in inv.gaps["systems"]
    inv = collect_inventory(tree.get, host_system="/redfish/v1/Systems/9")
    assert "bmc.system /redfish/v1/Systems/9 is not listed" in inv.gaps["systems"]


def _sushy_samples() -> dict[str, dict[str, Any]]:
    """sushy's own sample documents (shipped in its wheel, DMTF mockup-derived), by @odata.id."""
    import json
    from pathlib import Path

    import sushy

    folder = Path(sushy.__file__).parent / "tests" / "unit" / "json_samples"
    if not folder.is_dir():
        pytest.skip(f"sushy's sample documents are not installed at {folder}")
    index: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and isinstance(doc.get("@odata.id"), str):
            index.setdefault(doc["@odata.id"].rstrip("/"), doc)
    return index


def test_sushys_sample_documents_normalize_with_absent_parts_skipped_and_gaps_named() -> None:
    docs = _sushy_samples()
    inv = collect_inventory(lambda path: docs.get(path.rstrip("/")))
    cpu1 = docs["/redfish/v1/Systems/437XR1138R2/Processors/CPU1"]
    assert docs["/redfish/v1/Systems/437XR1138R2/Processors/CPU2"]["Status"]["State"] == "Absent"
    assert [(c.socket, c.model, c.cores, c.threads) for c in inv.cpus] == [
        (cpu1["Socket"], cpu1["Model"], cpu1["TotalCores"], cpu1["TotalThreads"])
    ]
    drives = {d.name: d for d in inv.drives}
    sample = docs["/redfish/v1/Systems/437XR1138R2/Storage/1/Drives/32ADF365C6C1B7BD"]
    got = drives["32ADF365C6C1B7BD"]
    assert (got.capacity_bytes, got.protocol, got.serial) == (
        sample["CapacityBytes"],
        sample["Protocol"],
        sample["SerialNumber"],
    )
    assert [c.name for c in inv.storage_controllers] == ["1/0"]  # MemberId "0" of Storage "1"
    assert {v.raid_type for v in inv.volumes} >= {"Mirrored"}  # VolumeType where RAIDType is absent
    nic = docs["/redfish/v1/Systems/437XR1138R2/EthernetInterfaces/12446A3B0411"]
    assert [(n.mac, n.speed_mbps) for n in inv.nics] == [(nic["MACAddress"].lower(), nic["SpeedMbps"])]
    assert inv.system.boot_target == "Pxe" and inv.system.serial == "437XR1138R2"
    # No Memory members and no firmware inventory in these samples: said, not guessed; and the
    # chassis and drive they link but do not carry are 404s, gaps that make those counts inconclusive.
    assert set(inv.gaps) == {"memory", "firmware", "chassis", "drives"}
    assert "Drives/3F5A8C54207B7233: the BMC answered 404" in inv.gaps["drives"]
    assert inv.dimms == []
    findings = check_memory(PROFILE, inv)
    assert [(f.check, f.verdict) for f in findings] == [("dimm_count", Verdict.INCONCLUSIVE)]


def test_a_bmc_with_three_systems_reads_only_the_hosts_own_and_its_manager() -> None:
    """One BMC fronting three nodes (each with its own chassis and manager): the walk reads the
    host's System, its chassis-linked parts and the manager it names, never the other nodes."""
    import json

    base = build_tree(PROFILE, HOST, Style.supermicro)
    tree: dict[str, Any] = {}
    for n in ("1", "2", "3"):
        text = json.dumps(base)
        for kind in ("Systems", "Chassis", "Managers"):
            text = text.replace(f"/redfish/v1/{kind}/1", f"/redfish/v1/{kind}/{n}")
        tree.update({k: v for k, v in json.loads(text).items() if k.rstrip("/") != "/redfish/v1"})
    tree["/redfish/v1"] = base["/redfish/v1"]
    for kind in ("Systems", "Chassis", "Managers"):
        tree[f"/redfish/v1/{kind}"]["Members"] = [{"@odata.id": f"/redfish/v1/{kind}/{n}"} for n in "123"]
    tree["/redfish/v1/Managers/2"]["FirmwareVersion"] = "02.00.00"  # the host's own BMC
    asked: list[str] = []

    def fetch(path: str) -> Any:
        asked.append(path.rstrip("/"))
        return tree.get(path.rstrip("/"))

    inv = collect_inventory(fetch, host_system="/redfish/v1/Systems/2")
    others = [
        p
        for p in asked
        if p.startswith(tuple(f"/redfish/v1/{k}/{n}" for k in ("Systems", "Chassis") for n in "13"))
    ]
    assert others == []
    assert [p for p in asked if p.startswith("/redfish/v1/Managers/")] == ["/redfish/v1/Managers/2"]
    assert len(inv.cpus) == 2 and len(inv.gpus) == 4 and inv.system.bmc_version == "02.00.00"
    assert len(inv.pcie) == len(_inventory(Style.supermicro).pcie)  # one node's devices, not three
    assert "skipped /redfish/v1/Systems/1, /redfish/v1/Systems/3" in inv.gaps["systems"]
    # Without bmc.system and several nodes, the first bootable one is the host, and only it is read.
    asked.clear()
    inv = collect_inventory(fetch)
    assert not [p for p in asked if p.startswith(("/redfish/v1/Systems/2", "/redfish/v1/Systems/3"))]
    assert inv.system.bmc_version == "01.04.08"
