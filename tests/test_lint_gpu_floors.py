"""`provision lint`: a profile's GPU floors against the hardware catalog (provision/model/gpu_cards.py)
and the link the cards train at (provision/lint/gpu_floors.py): floors that can never pass (above the
card's memory bandwidth or the link's rate, busbw over one GPU, more than 100% of the power limit) are
errors, floors nothing applies are warnings; each finding names its own field's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.lint import gpu_floors as lint_gpu_floors
from provision.lint.catalog import LintFinding, lint_catalog
from provision.lint.finding import Findings
from provision.model.catalog import load_catalog
from provision.model.gpu_cards import GPU_CARDS, GpuCard
from provision.model.gpu_floors import PCIE_GTS, GpuFloors, P2p, pcie_link_gbs

LUST = "circle-2-lust.yaml"
FLOORS = "gpu_floors:  # provision/model/gpu_floors.py; the agent measures copies when these are set\n"


def edit(profiles: Path, old: str, new: str, name: str = LUST) -> None:
    path = profiles / name
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def gpu_lint(profiles: Path, name: str = LUST) -> list[tuple[str, str, str, str]]:
    found: list[LintFinding] = [
        f for f in lint_catalog(load_catalog(profiles)) if f.code.startswith("gpu_floors.")
    ]
    text = (profiles / name).read_text().splitlines()
    for f in found:  # each finding names the line of its own field
        key = f.field.rsplit(".", 1)[-1]
        assert f.file.endswith(name) and f"{key}:" in text[f.line - 1], (f, text[f.line - 1])
    return [(str(f.severity), f.code, f.field, f.message) for f in found]


def test_the_shipped_profiles_are_clean(profiles_copy: Path) -> None:
    assert gpu_lint(profiles_copy) == [] and gpu_lint(profiles_copy, "circle-6-heresy.yaml") == []


def test_a_memory_peak_above_the_card(profiles_copy: Path) -> None:
    edit(
        profiles_copy,
        "measurement: per_gpu.*.mem_gbs, unit: GB/s, peak_of: gpu_memory_bandwidth,",
        "measurement: per_gpu.*.mem_gbs, unit: GB/s, peak: 2000,",
    )
    [(sev, code, field, message)] = gpu_lint(profiles_copy)
    assert (sev, code, field) == ("error", "gpu_floors.memory-above-card", "acceptance.floors[2].peak")
    assert message == (
        "gpu_memory_bandwidth: peak 2000 GB/s is above the card's theoretical 1792 GB/s: it can never pass"
    )


def test_a_profile_bandwidth_above_the_catalogs_card(profiles_copy: Path) -> None:
    """The Server Edition (0x2bb5) has 1,597 GB/s: a profile that copies the Max-Q's 1,792 is wrong."""
    edit(profiles_copy, 'pci_device_id: "0x2bb4"', 'pci_device_id: "0x2bb5"')
    edit(profiles_copy, "power_limit_w: 300", "power_limit_w: 650")
    found = gpu_lint(profiles_copy)
    assert [(s, c, f) for s, c, f, _ in found] == [
        ("error", "gpu_floors.power-above-card", "gpus.power_limit_w"),
        ("error", "gpu_floors.memory-above-card", "gpus.mem_bandwidth_gbs"),
    ]
    assert found[1][3].startswith("1792 GB/s is above the catalog's theoretical 1597 GB/s for RTX PRO 6000")
    assert (
        found[0][3]
        == "650 W is above the highest limit RTX PRO 6000 Blackwell Server Edition can be set to, 600 W"
    )


def test_copy_peaks_above_the_link_and_a_link_above_the_card(profiles_copy: Path) -> None:
    name = "circle-6-heresy.yaml"  # L40S, Gen4 x16: 32 GB/s per direction
    edit(
        profiles_copy,
        "copies.hosts.*.h2d_gbs, unit: GB/s, peak: 32,",
        "copies.hosts.*.h2d_gbs, unit: GB/s, peak: 64,",
        name,
    )
    [(sev, code, field, message)] = gpu_lint(profiles_copy, name)
    assert (sev, code, field) == ("error", "gpu_floors.pcie-above-link", "acceptance.floors[3].peak")
    assert "peak 64 GB/s is above the Gen4 x16 link's theoretical 32 GB/s per direction" in message
    edit(profiles_copy, "pcie_gen: 4\n", "pcie_gen: 5\n", name)
    codes = [(c, f) for _, c, f, _ in gpu_lint(profiles_copy, name)]
    assert codes == [("gpu_floors.pcie-above-card", "gpus.pcie_gen")]  # Gen5 x16 carries 64 GB/s


@pytest.mark.parametrize(
    ("block", "code", "severity", "field", "says"),
    [
        (
            "  peer_min_gbs: 20\n",
            "gpu_floors.peer-floor-unused",
            "warning",
            "gpu_floors.peer_min_gbs",
            "p2p is not set",
        ),
        (
            "  p2p: absent\n  peer_min_gbs: 20\n",
            "gpu_floors.peer-floor-unused",
            "warning",
            "gpu_floors.peer_min_gbs",
            "p2p is absent",
        ),
        (
            "  p2p: expected\n  peer_min_gbs: 70\n",
            "gpu_floors.peer-above-link",
            "error",
            "gpu_floors.peer_min_gbs",
            "above the Gen5 x16 link's theoretical 64 GB/s",
        ),
        (
            "  busbw_min_gbs: 80\n",
            "gpu_floors.busbw-above-link",
            "error",
            "gpu_floors.busbw_min_gbs",
            "busbw_min_gbs 80 GB/s is above",
        ),
        (
            "  sustain_pct: 105\n",
            "gpu_floors.power-above-limit",
            "error",
            "gpu_floors.sustain_pct",
            "sustain_pct 105%: a board never sustains more than 100%",
        ),
        (
            "  p2p: expected\n",
            "gpu_floors.p2p-unknown",
            "info",
            "gpu_floors.p2p",
            "confirm p2p: expected on the first unit",
        ),
    ],
)
def test_gpu_floors_rules(
    profiles_copy: Path, block: str, code: str, severity: str, field: str, says: str
) -> None:
    edit(profiles_copy, FLOORS, FLOORS + block)
    [(sev, got, where, message)] = [f for f in gpu_lint(profiles_copy) if f[1] == code]
    assert (sev, got, where) == (severity, code, field) and says in message, message


def test_one_gpu_cannot_give_pairs_or_a_bus_bandwidth(profiles_copy: Path) -> None:
    edit(profiles_copy, "  count: 4\n  fp32_tflops", "  count: 1\n  fp32_tflops")
    edit(profiles_copy, FLOORS, FLOORS + "  p2p: absent\n  busbw_min_gbs: 20\n")
    found = {c: (s, m) for s, c, _, m in gpu_lint(profiles_copy)}
    assert found["gpu_floors.p2p-single-gpu"] == (
        "warning",
        "p2p: absent with gpus.count 1: there is no pair of GPUs to check",
    )
    assert found["gpu_floors.busbw-single-gpu"][0] == "error"
    assert "nccl-tests reports 0 bus bandwidth" in found["gpu_floors.busbw-single-gpu"][1]


def test_p2p_expected_on_a_card_the_catalog_says_gets_none(profiles_copy: Path) -> None:
    catalog = load_catalog(profiles_copy)
    profile = catalog.profiles["circle-2-lust"]
    expected = profile.model_copy(update={"gpu_floors": GpuFloors(p2p=P2p.expected)})
    no_peers = {"0x2bb4": GpuCard("Test card", 1792, 5, 16, 300, False, False)}
    out = Findings()
    lint_gpu_floors.check(expected, catalog.documents["circle-2-lust"], out, no_peers)
    [f] = out.items
    assert (f.severity, f.code, f.field) == ("error", "gpu_floors.p2p-unsupported", "gpu_floors.p2p")
    assert "the catalog says Test card (0x2bb4) gets no peer access" in f.message
    out = Findings()
    absent = profile.model_copy(update={"gpu_floors": GpuFloors(p2p=P2p.absent)})
    lint_gpu_floors.check(absent, catalog.documents["circle-2-lust"], out, no_peers)
    assert out.items == []


def test_gpu_floors_without_gpus_is_an_error(profiles_copy: Path) -> None:
    limbo = profiles_copy / "circle-1-limbo.yaml"
    assert "gpu_floors" not in limbo.read_text() and "\ngpus:" not in limbo.read_text()
    limbo.write_text(limbo.read_text() + "gpu_floors:\n  pcie_floor_pct: 75\n")
    [(sev, code, field, message)] = gpu_lint(profiles_copy, "circle-1-limbo.yaml")
    assert (sev, code, field, message) == (
        "error",
        "gpu_floors.no-gpus",
        "gpu_floors",
        "gpu_floors needs a gpus block, got none",
    )


def test_the_models_link_rate_is_the_agents() -> None:
    from burnin.gpu_copy import PCIE_GTS as AGENT_GTS
    from burnin.gpu_copy import pcie_theoretical_gbs

    assert PCIE_GTS == AGENT_GTS
    for gen in range(1, 7):
        for width in (1, 2, 4, 8, 16):
            assert pcie_link_gbs(gen, width) == pcie_theoretical_gbs(gen, width)
    assert pcie_link_gbs(5, 16) == 64 and pcie_link_gbs(4, 16) == 32 and pcie_link_gbs(7, 16) is None
    assert set(GPU_CARDS) == {"0x2bb5", "0x2bb4", "0x2bb1", "0x26b9"}
