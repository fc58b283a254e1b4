"""hwmon temperature series: one name per device, so two sockets' k10temp never overwrite each other,
and the acceptance's CPU temperature patterns still find every socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from burnin import telemetry
from provision.acceptance.timeseries import parse_telemetry
from provision.model.profile import Acceptance


def _hwmon(sys: Path, index: int, device: str, name: str, temps: dict[str, int]) -> None:
    """A hwmon device as sysfs lays it out: class/hwmon/hwmonN -> devices/.../hwmon/hwmonN."""
    dev = sys / "devices" / device
    hw = dev / "hwmon" / f"hwmon{index}"
    hw.mkdir(parents=True)
    (hw / "name").write_text(name + "\n")
    (hw / "device").symlink_to(dev)
    for i, (label, millideg) in enumerate(temps.items(), 1):
        (hw / f"temp{i}_input").write_text(f"{millideg}\n")
        (hw / f"temp{i}_label").write_text(label + "\n")
    link = sys / "class" / "hwmon" / f"hwmon{index}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(hw)


@pytest.fixture
def two_socket_sys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sys = tmp_path / "sys"
    # Probe order puts socket 1 (PCI 00:19.3) first: the hwmon numbers must not decide the name.
    _hwmon(sys, 2, "pci0000:00/0000:00:19.3", "k10temp", {"Tctl": 58900, "Tccd1": 51000})
    _hwmon(sys, 3, "pci0000:00/0000:00:18.3", "k10temp", {"Tctl": 61200, "Tccd1": 53000})
    _hwmon(sys, 4, "pci0000:40/0000:40:01.1/0000:41:00.0/nvme/nvme0", "nvme", {"Composite": 41850})
    _hwmon(sys, 0, "platform/acpitz", "acpitz", {"temp1": 27800})
    monkeypatch.setattr(telemetry, "SYS", sys)
    return sys


def test_two_k10temp_devices_get_one_series_each_by_socket(two_socket_sys: Path) -> None:
    assert telemetry.hwmon_temps() == {
        "temp.k10temp-0.Tctl": 61.2,
        "temp.k10temp-0.Tccd1": 53.0,
        "temp.k10temp-1.Tctl": 58.9,
        "temp.k10temp-1.Tccd1": 51.0,
        "temp.nvme0.Composite": 41.85,
        "temp.acpitz.temp1": 27.8,
    }


def test_a_single_socket_keeps_the_plain_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys = tmp_path / "sys"
    _hwmon(sys, 1, "pci0000:00/0000:00:18.3", "k10temp", {"Tctl": 61200})
    monkeypatch.setattr(telemetry, "SYS", sys)
    assert telemetry.hwmon_temps() == {"temp.k10temp.Tctl": 61.2}


def test_the_acceptance_patterns_find_both_sockets(two_socket_sys: Path) -> None:
    line = json.dumps({"t": 1.0, "v": telemetry.hwmon_temps()})
    tel = parse_telemetry([line])
    names = sorted({n for p in Acceptance().cpu_temp_series for n in tel.matching(p)})
    assert names == [
        "temp.k10temp-0.Tccd1",
        "temp.k10temp-0.Tctl",
        "temp.k10temp-1.Tccd1",
        "temp.k10temp-1.Tctl",
    ]
