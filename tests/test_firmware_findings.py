"""The firmware judgement, pure: inventory -> firmware rows -> uniformity and baseline findings, and
the profile's `firmware:` block rejecting what it cannot mean (each message asserted)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from burnin.hardware import Drive, Firmware, Gpu, HardwareInventory, SystemInfo
from provision.acceptance.firmware import (
    below_baseline,
    check_baseline,
    check_uniformity,
    firmware_items,
)
from provision.model.firmware import FirmwareBaseline, UniformityPolicy, version_key

L40S = "NVIDIA L40S"


def _inv(
    vbios: list[str | None], bmc: str | None = "1.2", firmware: list[Firmware] | None = None
) -> HardwareInventory:
    inv = HardwareInventory(source="redfish", collected_at=0.0)
    inv.system = SystemInfo(bios_version="3.1", bmc_version=bmc)
    inv.gpus = [Gpu(index=f"GPU{i}", name=L40S, serial=f"S{i}", vbios=v) for i, v in enumerate(vbios)]
    inv.firmware = firmware or []
    return inv


def _seen(findings: list[Any]) -> list[tuple[str, str, str]]:
    return [(f.component, f.verdict.value, f.observed) for f in findings]


@pytest.mark.parametrize(
    ("vbios", "policy", "want"),
    [
        (["95.1", "95.1"], "fail", [("gpu:NVIDIA L40S x2", "pass", "95.1 on all 2")]),
        (
            ["95.1", "95.1", "94.0"],
            "fail",
            [("gpu:GPU2 (serial S2)", "fail", "94.0; all: 95.1 on gpu:GPU0, gpu:GPU1; 94.0 on gpu:GPU2")],
        ),
        (
            ["95.1", "95.1", "94.0"],
            "warn",
            [("gpu:GPU2 (serial S2)", "warn", "94.0; all: 95.1 on gpu:GPU0, gpu:GPU1; 94.0 on gpu:GPU2")],
        ),
        # No majority: which GPU is the odd one cannot be told, so the group is named.
        (["95.1", "94.0"], "fail", [("gpu:NVIDIA L40S x2", "fail", "95.1 on gpu:GPU0; 94.0 on gpu:GPU1")]),
        # A GPU that reports no version is inconclusive, never counted as agreeing.
        (
            ["95.1", None],
            "fail",
            [("gpu:NVIDIA L40S x2", "inconclusive", "95.1 on gpu:GPU0; no version from gpu:GPU1")],
        ),
        (
            [None, None],
            "fail",
            [("gpu:NVIDIA L40S x2", "inconclusive", "no version from gpu:GPU0, gpu:GPU1")],
        ),
        (["95.1"], "fail", []),  # one part has no siblings
    ],
)
def test_uniformity_table(vbios: list[str | None], policy: str, want: list[tuple[str, str, str]]) -> None:
    found = check_uniformity(firmware_items(_inv(vbios)), UniformityPolicy(policy))
    assert _seen(found) == want
    assert all(f.check == "firmware_uniform" and f.evidence == ["redfish.inventory"] for f in found)


def test_drives_of_two_models_are_two_groups() -> None:
    inv = _inv([])
    inv.drives = [
        Drive(name="nvme0", model="PM9A3", serial="A", firmware="GDC5902Q"),
        Drive(name="nvme1", model="PM9A3", serial="B", firmware="GDC5902Q"),
        Drive(name="sda", model="PM893", serial="C", firmware="JXTC404Q"),
        Drive(name="sdb", model="PM893", serial="D", firmware="JXTC404Q"),
    ]
    found = check_uniformity(firmware_items(inv), UniformityPolicy.fail)
    assert [(f.component, f.verdict.value) for f in found] == [
        ("drive:PM893 x2", "pass"),
        ("drive:PM9A3 x2", "pass"),
    ]


def _baseline(**rules: Any) -> FirmwareBaseline:
    return FirmwareBaseline.model_validate({"baseline": rules})


@pytest.mark.parametrize(
    ("rules", "bmc", "want"),
    [
        ({"bmc": {"minimum": "1.10"}}, "1.9", [("bmc", "fail", "1.9")]),
        ({"bmc": {"minimum": "1.10"}}, "1.10.2", [("bmc", "pass", "1.10.2")]),
        ({"bmc": {"allowed": ["1.2", "1.3"]}}, "1.2", [("bmc", "pass", "1.2")]),
        ({"bmc": {"allowed": ["1.2", "1.3"]}}, "1.4", [("bmc", "fail", "1.4")]),
        ({"bmc": {"minimum": "1.10"}}, None, [("bmc", "inconclusive", "no version reported by the BMC")]),
        ({"bmc": {"minimum": "1.10"}}, "unknown", [("bmc", "inconclusive", "unknown (not a version)")]),
        # A kind the inventory has no part of: nothing to judge is inconclusive, never pass.
        ({"psu": {"minimum": "1.3"}}, "1.2", [("psu", "inconclusive", "no version reported by the BMC")]),
    ],
)
def test_baseline_table(rules: dict[str, Any], bmc: str | None, want: list[tuple[str, str, str]]) -> None:
    found = check_baseline(firmware_items(_inv([], bmc=bmc)), _baseline(**rules))
    assert _seen(found) == want
    assert all(f.check == "firmware_baseline" for f in found)


def test_baseline_by_model_and_the_parts_an_image_would_update() -> None:
    inv = _inv(["95.1", "94.0"])
    rule = {"allowed": ["95.1"], "model": "L40S", "image": "vbios-95.1.rom", "image_version": "95.1"}
    found = check_baseline(firmware_items(inv), _baseline(gpu=rule))
    assert [(f.component, f.verdict.value) for f in found] == [
        ("gpu:GPU0 (serial S0)", "pass"),
        ("gpu:GPU1 (serial S1)", "fail"),
    ]
    assert [it.name for _, it in below_baseline(inv, _baseline(gpu=rule))] == ["gpu:GPU1"]
    assert check_baseline(firmware_items(inv), _baseline(gpu={**rule, "model": "H200"}))[0].verdict.value == (
        "inconclusive"
    )


def test_inventory_entries_join_their_parts() -> None:
    fw = [
        Firmware(name="BIOS", version="3.1", component="bios", updateable=True, path="/fw/BIOS"),
        Firmware(name="GPU1 VBIOS", version="94.0", component="gpu", related="/Systems/1/Processors/GPU1",
                 updateable=True, path="/fw/GPU1"),
        Firmware(name="CPLD", version="F1", component="cpld", updateable=False, path="/fw/CPLD"),
        Firmware(name="NIC.Slot.3", version="22.31.6", component="nic", model="ConnectX-6", serial="MT1"),
    ]  # fmt: skip
    items = {it.name: it for it in firmware_items(_inv(["95.1", None], firmware=fw))}
    assert items["bios"].path == "/fw/BIOS" and items["bios"].updateable is True
    assert items["gpu:GPU1"].version == "94.0" and items["gpu:GPU1"].path == "/fw/GPU1"
    assert items["CPLD"].component == "cpld" and items["CPLD"].updateable is False
    assert items["nic:NIC.Slot.3"].model == "ConnectX-6"
    assert len(items) == 6  # bios, bmc, 2 GPUs, CPLD, NIC: no row twice


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"baseline": {"bmc": {}}}, "expected exactly one of `allowed` (a list of versions) or `minimum`"),
        (
            {"baseline": {"bmc": {"allowed": ["1"], "minimum": "1"}}},
            "expected exactly one of `allowed` (a list of versions) or `minimum`",
        ),
        ({"baseline": {"bmc": {"minimum": "latest"}}}, "minimum 'latest' is not a version"),
        (
            {"baseline": {"bmc": {"minimum": "1.2", "image": "a.bin"}}},
            "`image` and `image_version` go together",
        ),
        (
            {"baseline": {"bmc": {"minimum": "1.2", "image": "a.bin", "image_version": "1.1"}}},
            "image_version '1.1' does not meet the baseline (>= 1.2)",
        ),
        ({"baseline": {"fpga": {"minimum": "1"}}}, "Input should be 'bios', 'bmc', 'cpld', 'gpu'"),
        ({"uniformity": "maybe"}, "Input should be 'fail' or 'warn'"),
        ({"baseline": {"bmc": {"minimun": "1"}}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_firmware_blocks_say_why(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        FirmwareBaseline.model_validate(block)
    assert message in str(info.value)


def test_versions_order_by_number() -> None:
    assert version_key("1.10") > version_key("1.9")  # type: ignore[operator]
    assert version_key("96.00.5E.00.01") > version_key("96.00.4A.00.01")  # type: ignore[operator]
    assert version_key("n/a") is None


def _record(inv: HardwareInventory, run_id: str) -> dict[str, Any]:
    return {
        "host": "h",
        "verdict": "accepted",
        "run": {"run_id": run_id, "started_at": 0.0},
        "inventory": {"in_os": None, "pre_os": inv.to_dict()},
        "suites": [],
        "findings": [],
    }


def test_report_diff_and_html_show_the_bmcs_firmware() -> None:
    from provision.acceptance.report.diff import diff_records
    from provision.acceptance.report.html import _firmware

    cpld = [Firmware(name="CPLD", version="F1", component="cpld", updateable=False, path="/fw/CPLD")]
    before, after = _inv(["95.1", "95.1"], firmware=cpld), _inv(["95.1", "96.0"], bmc="1.3")
    after.firmware = [
        Firmware(name="CPLD", version="F2", component="cpld", updateable=False, path="/fw/CPLD")
    ]
    changes = {
        c["item"]: (c["a"], c["b"])
        for c in diff_records(_record(before, "a"), _record(after, "b"))["firmware"]
    }
    assert changes["system bmc"] == ("1.2", "1.3")
    assert changes["gpu S1 vbios"] == ("95.1", "96.0")
    assert changes["firmware CPLD"] == ("F1", "F2") and "cpld CPLD firmware" not in changes
    html = _firmware(after.to_dict(), frozenset({"S1"}))
    assert "<h3>Firmware</h3>" in html and "96.0" in html and html.count("<tr class=bad>") == 1
