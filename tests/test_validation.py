"""Each check kind with passing, failing and inconclusive evidence, on the compute host's fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from burnin.schema import Verdict
from provision.acceptance.golden import capture, golden_from_dict
from provision.model.errors import BadInput
from provision.model.profile import Counter, Profile, Suite
from tests.support.bundle import HOST, Bundle, by_id, catalog, golden

P, F, W, INC = Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.INCONCLUSIVE
DIMM0 = "dimm:P0 CHANNEL A (serial 80CE012A40)"
GPU0 = "gpu:0 (serial 1652824012340)"
NVME1 = "drive:nvme1n1 (serial 2451E8A101)"
ETH1 = "nic_link:nic:eth1 (3c:ec:ef:20:01:11)"


def lust() -> Profile:
    return catalog().profile_of(catalog().host(HOST))


def with_acceptance(**changes: Any) -> Profile:
    p = lust()
    return p.model_copy(update={"acceptance": p.acceptance.model_copy(update=changes)})


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    for step in head:
        d = d[int(step)] if isinstance(d, list) else d[step]  # type: ignore[assignment]
    if isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


def os_set(path: str, value: Any) -> Callable[[Bundle], None]:
    return lambda b: _set(b.inos, path, value)


def pre_set(path: str, value: Any) -> Callable[[Bundle], None]:
    return lambda b: _set(b.pre or {}, path, value)


def suite_set(suite: str, path: str, value: Any) -> Callable[[Bundle], None]:
    return lambda b: _set(b.suite(suite)["measurements"], path, value)


def suite_del(suite: str, key: str) -> Callable[[Bundle], None]:
    return lambda b: b.suite(suite)["measurements"].pop(key)


def drop_series(prefix: str) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        out = []
        for line in b.telemetry or []:
            obj = json.loads(line)
            if "v" in obj:
                obj["v"] = {k: v for k, v in obj["v"].items() if not k.startswith(prefix)}
            out.append(json.dumps(obj))
        b.telemetry = out

    return edit


def scale_series(name: str, factor: float) -> Callable[[Bundle], None]:
    def edit(b: Bundle) -> None:
        out = []
        for line in b.telemetry or []:
            obj = json.loads(line)
            if name in obj.get("v", {}):
                obj["v"][name] *= factor
            out.append(json.dumps(obj))
        b.telemetry = out

    return edit


def nothing(_: Bundle) -> None:
    return None


def drop_dimm_in_os(b: Bundle) -> None:
    b.inos["dimms"].pop(0)


def drop_suite(name: str) -> Callable[[Bundle], None]:
    return lambda b: b.result["suites"].remove(b.suite(name))


def strip_pre_serials(b: Bundle) -> None:
    for d in (b.pre or {})["dimms"]:
        d["serial"] = None


def no_telemetry(b: Bundle) -> None:
    b.telemetry = None


CASES: list[tuple[str, Callable[[Bundle], None], str, Verdict, str]] = [
    # exact spec fields (model strings, counts, sizes in exact units)
    ("cpu_model pass", nothing, "cpu_model:cpu:P0", P, "AMD EPYC 9655 96-Core Processor"),
    (
        "cpu_model fail",
        os_set("cpus.0.model", "AMD EPYC 9654 96-Core Processor"),
        "cpu_model:cpu:P0",
        F,
        "9654",
    ),
    ("cpu_model inconclusive", os_set("cpus.0.model", None), "cpu_model:cpu:P0", INC, "(not reported)"),
    ("dimm_count fail", drop_dimm_in_os, "dimm_count:node", F, "23"),
    ("dimm size fail", os_set("dimms.0.size_mib", 16384), f"dimm_size_mib:{DIMM0}", F, "16384"),
    ("memory channels fail", os_set("dimms.0.channel", "B"), "memory_channels_per_socket:node", F, "11"),
    (
        "drive capacity fail",
        os_set("drives.3.capacity_bytes", 3200631791616),
        f"drive_capacity_bytes:{NVME1}",
        F,
        "3200631791616",
    ),
    ("drive capacity pass", nothing, f"drive_capacity_bytes:{NVME1}", P, "3840755982336"),
    (
        "drive link inconclusive",
        os_set("drives.3.pcie_gen", None),
        f"drive_pcie_gen:{NVME1}",
        INC,
        "not reported",
    ),
    ("drive link fail", os_set("drives.3.pcie_gen", 4), f"drive_pcie_gen:{NVME1}", F, "4"),
    # configured speed: allowed set, expected value
    ("dimm speed pass", nothing, f"dimm_configured_mts:{DIMM0}", P, "6000 MT/s"),
    (
        "dimm speed faster, allowed",
        os_set("dimms.0.configured_mts", 6400),
        f"dimm_configured_mts:{DIMM0}",
        P,
        "6400",
    ),
    ("dimm speed fail", os_set("dimms.0.configured_mts", 4800), f"dimm_configured_mts:{DIMM0}", F, "4800"),
    (
        "dimm speed inconclusive",
        os_set("dimms.0.configured_mts", None),
        f"dimm_configured_mts:{DIMM0}",
        INC,
        "not",
    ),
    # GPU: name, memory within tolerance, link, power limit
    ("gpu memory pass", os_set("gpus.0.memory_mib", 97800), f"gpu_memory_mib:{GPU0}", P, "97800 MiB"),
    ("gpu memory fail", os_set("gpus.0.memory_mib", 46068), f"gpu_memory_mib:{GPU0}", F, "46068 MiB"),
    (
        "gpu memory inconclusive",
        os_set("gpus.0.memory_mib", None),
        f"gpu_memory_mib:{GPU0}",
        INC,
        "not reported",
    ),
    ("gpu link fail", os_set("gpus.0.pcie_width_max", 8), f"gpu_pcie_width:{GPU0}", F, "8"),
    ("gpu power limit fail", os_set("gpus.0.power_limit_w", 600.0), f"gpu_power_limit_w:{GPU0}", F, "600"),
    (
        "gpu name fail (pre-OS)",
        pre_set("gpus.1.name", "NVIDIA RTX PRO 6000 Blackwell Server Edition"),
        "gpu_name:gpu:GPU2 (serial 1652824012341)@redfish",
        F,
        "Server Edition",
    ),
    # NIC speed and link by MAC
    ("nic pass", nothing, "nic_link:nic:eth1 (3c:ec:ef:20:01:11)", P, "25 Gb/s, link up"),
    (
        "nic slow fail",
        os_set("nics.1.speed_mbps", 10000),
        "nic_link:nic:eth1 (3c:ec:ef:20:01:11)",
        F,
        "10 Gb/s",
    ),
    ("nic down fail", os_set("nics.1.link_up", False), "nic_link:nic:eth1 (3c:ec:ef:20:01:11)", F, "down"),
    (
        "nic inconclusive",
        os_set("nics.1.speed_mbps", None),
        "nic_link:nic:eth1 (3c:ec:ef:20:01:11)",
        INC,
        "?",
    ),
    ("optional nic absent warns", nothing, "nic_link:nic:ib0", W, "absent"),
    # pre-OS vs in-OS cross-check by serial
    ("dimm both views pass", nothing, "dimm_views_agree:node", P, "24 matched"),
    (
        "dimm the OS does not see",
        drop_dimm_in_os,
        "dimm_seen_by_os:dimm:P0_DIMMA1 (serial 80CE012A40)",
        F,
        "absent in the OS",
    ),
    (
        "dimm serials missing pre-OS",
        strip_pre_serials,
        "dimm_views_agree:node",
        P,
        "identities missing on 24",
    ),
    (
        "gpu swapped between views",
        os_set("gpus.2.serial", "1652824099999"),
        "gpu_seen_by_bmc:gpu:2 (serial 1652824099999)",
        F,
        "absent from Redfish",
    ),
    # suites ran to their end
    ("suite completed", nothing, "suite_completed:suite:gpu", P, "ran 14400 s"),
    ("suite missing", drop_suite("gpu"), "suite_completed:suite:gpu", INC, "no result"),
    (
        "suite stopped",
        lambda b: b.suite("gpu").update(error="timed out after 90 s"),
        "suite_completed:suite:gpu",
        INC,
        "timed out",
    ),
    # floors as % of the theoretical peak
    ("stream pass", nothing, "stream_triad:node", P, "80.3% of peak"),
    ("stream warn", suite_set("memory", "triad_gbs", 880.0), "stream_triad:node", W, "76.4% of peak"),
    ("stream fail", suite_set("memory", "triad_gbs", 600.0), "stream_triad:node", F, "52.1% of peak"),
    ("stream inconclusive", suite_del("memory", "triad_gbs"), "stream_triad:node", INC, "not reported"),
    ("stream not a number", suite_set("memory", "triad_gbs", "n/a"), "stream_triad:node", INC, "'n/a'"),
    # spread between sibling parts
    ("gpu spread pass", nothing, "gpu_compute_spread:gpu:2", P, "+0.2%"),
    ("gpu spread fail", suite_set("gpu", "per_gpu.2.tflops", 88.0), "gpu_compute_spread:gpu:2", F, "-12.0%"),
    ("gpu spread inconclusive", suite_del("gpu", "per_gpu"), "gpu_compute:node", INC, "not reported"),
    # floors per part, keyed by the agent's component names
    ("nvme floor pass", nothing, "nvme_seq_read:nvme:2451E8A101", P, "88.4% of peak"),
    (
        "nvme floor fail",
        suite_set("nvme", "fio.nvme:2451E8A101.seq_read.bw_bytes_per_s", 9.1e9),
        "nvme_seq_read:nvme:2451E8A101",
        F,
        "57.8% of peak",
    ),
    ("nvme floor inconclusive", suite_del("nvme", "fio"), "nvme_seq_read:node", INC, "not reported"),
    # temperature margins
    ("cpu temp pass", nothing, "cpu_temperature:temp.k10temp.Tctl", P, "max 79.0"),
    (
        "cpu temp fail",
        scale_series("temp.k10temp.Tctl", 1.2),
        "cpu_temperature:temp.k10temp.Tctl",
        F,
        "max 94",
    ),
    ("cpu temp inconclusive", drop_series("temp.k10temp"), "cpu_temperature:cpu", INC, "not reported"),
    ("gpu margin pass", nothing, "gpu_temperature_margin:gpu:0", P, "max 82.0"),
    ("gpu margin fail", scale_series("gpu0.temp_c", 1.12), "gpu_temperature_margin:gpu:0", F, "max 9"),
    (
        "gpu margin inconclusive",
        suite_set("gpu", "gpus.0.slowdown_c", None),
        "gpu_temperature_margin:gpu:0",
        INC,
        "max 82.0",
    ),
    # peak power vs the feed's continuous rating (30 A x 208 V x 80% = 4992 W)
    ("power pass (BMC)", nothing, "peak_power:node", P, "(BMC)"),
    ("power fail (BMC)", scale_series("node.power_w", 2.5), "peak_power:node", F, "(BMC)"),
    ("power estimated from parts", drop_series("node."), "peak_power:node", P, "est. 2"),
    ("power inconclusive", no_telemetry, "peak_power:node", INC, "not reported"),
]


@pytest.mark.parametrize(("case", "edit", "fid", "verdict", "observed"), CASES, ids=[c[0] for c in CASES])
def test_check(case: str, edit: Callable[[Bundle], None], fid: str, verdict: Verdict, observed: str) -> None:
    b = Bundle()
    edit(b)
    findings = by_id(b.findings())
    assert fid in findings, f"{fid} not among {sorted(k for k in findings if k.split(':')[0] in fid)}"
    f = findings[fid]
    assert (f.verdict, observed in f.observed) == (verdict, True), f
    assert f.expected and f.check and f.component


COUNTER = Counter(check="nvme_media_errors", suite=Suite.nvme, measurement="fio.*.media_errors")


@pytest.mark.parametrize(("value", "verdict", "observed"), [(0, P, "0"), (3, F, "3"), (None, INC, "None")])
def test_counter_that_must_stay_zero(value: Any, verdict: Verdict, observed: str) -> None:
    b = Bundle()
    b.suite("nvme")["measurements"]["fio"]["nvme:2451E8A101"]["media_errors"] = value
    findings = by_id(b.findings(with_acceptance(counters=(COUNTER,))))
    f = findings["nvme_media_errors:nvme:2451E8A101"]
    assert (f.verdict, f.observed, f.expected) == (verdict, observed, "<= 0")


def test_counter_with_no_measurement_is_inconclusive() -> None:
    f = by_id(Bundle().findings(with_acceptance(counters=(COUNTER,))))["nvme_media_errors:node"]
    assert f.verdict is INC and f.observed == "(not reported)"


def test_dimm_trained_below_expected_but_allowed_warns() -> None:
    b = Bundle()
    p = lust()
    mem = p.memory.model_copy(update={"configured_mts_allowed": (5600, 6000, 6400)})
    b.inos["dimms"][0]["configured_mts"] = 5600
    f = by_id(b.findings(p.model_copy(update={"memory": mem})))[f"dimm_configured_mts:{DIMM0}"]
    assert f.verdict is W and "5600" in f.observed


@pytest.mark.parametrize(
    ("minimum", "bios", "verdict"),
    [("3.0", "3.1", P), ("3.10", "3.9", F), ("3.1a", "3.1b", P), ("3.2", None, INC), ("3.2", "unknown", INC)],
)
def test_firmware_minimum(minimum: str, bios: str | None, verdict: Verdict) -> None:
    b = Bundle()
    b.inos["system"]["bios_version"] = bios
    if b.pre is not None:
        b.pre["system"]["bios_version"] = None
        b.pre["firmware"] = []
    f = by_id(b.findings(with_acceptance(firmware_min={"bios": minimum})))["firmware_min_bios:system"]
    assert f.verdict is verdict
    assert f.expected == f">= {minimum}"


def test_firmware_read_pre_os_when_the_os_cannot() -> None:
    b = Bundle()  # the OS does not see the BMC's version; Redfish does
    f = by_id(b.findings(with_acceptance(firmware_min={"bmc": "01.04.00"})))["firmware_min_bmc:bmc"]
    assert (f.verdict, f.observed, f.source) == (F, "01.03.10", "redfish")


@pytest.mark.parametrize(("ref", "verdict"), [(930.0, P), (1000.0, W), (1100.0, F)])
def test_floor_against_golden(ref: float, verdict: Verdict) -> None:
    f = by_id(Bundle().findings(golden=golden(ref)))["stream_triad_vs_golden:node"]
    assert f.verdict is verdict and "inferno-host-compute-0" in f.expected


def test_no_golden_reference_means_no_golden_finding() -> None:
    assert not [f for f in Bundle().findings() if f.check.endswith("_vs_golden")]


def test_capture_takes_passing_suites_only_and_round_trips() -> None:
    b = Bundle()
    b.suite("nvme")["verdict"] = "fail"
    from burnin.schema import run_from_dict

    run = run_from_dict(b.result)
    g = capture("circle-2-lust", HOST, run.run_id, 1.0, run.suites)
    assert "nvme" not in g.measurements
    assert g.measurements["gpu"]["per_gpu.2.tflops"] == 100.6
    assert g.reference("gpu", "per_gpu.*.tflops") == pytest.approx(100.35)
    assert golden_from_dict(json.loads(json.dumps(g.to_dict())), "x.json") == g


def test_capture_refuses_a_run_with_nothing_passing() -> None:
    b = Bundle()
    for s in b.result["suites"]:
        s["verdict"] = "fail"
    from burnin.schema import run_from_dict

    run = run_from_dict(b.result)
    with pytest.raises(BadInput, match="expected at least one passing suite to capture, got none"):
        capture("circle-2-lust", HOST, run.run_id, 1.0, run.suites)


def test_golden_document_of_another_version_is_refused() -> None:
    with pytest.raises(BadInput, match=r"g.json: golden_version: expected 1, got 7"):
        golden_from_dict({"golden_version": 7}, "g.json")


def test_agent_findings_are_kept_verbatim() -> None:
    b = Bundle()
    b.suite("gpu")["findings"].append(
        {
            "id": "gpu_xid:gpu0",
            "check": "gpu_xid",
            "component": "gpu:0",
            "expected": "no XID",
            "observed": "XID 79",
            "verdict": "fail",
            "evidence": ["gpu.xid"],
            "required": True,
            "source": "nvml",
        }
    )
    f = by_id(b.findings())["gpu_xid:gpu0"]
    assert (f.verdict, f.observed, f.source) == (F, "XID 79", "nvml")
