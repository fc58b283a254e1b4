"""Host<->GPU and peer copies (burnin.gpu_copy) through the real ctypes code against the stand-in libcuda
(tests/support/fake_libcuda.c), whose events time a copy at a modelled rate, inside the real GPU suite
over the fake NVML, with a sysfs tree of our own for NUMA affinity and the trained link. One test per
verdict: at the link's rate, below the floor, one slow GPU, changed bytes, peer access expected vs
absent, a corrupting peer copy, a copy that cannot run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from burnin.gpu_copy import parse_cpulist, pcie_theoretical_gbs
from burnin.gpu_load import CudaStressor
from burnin.schema import SuiteResult, Verdict
from burnin.suites import gpu as gpu_suite
from tests.support.fake_cuda import build_libcuda
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor
from tests.test_gpu_suite import EXPECT, Harness, find


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_libcuda(tmp_path_factory.mktemp("fakecuda"))


def sysfs(tmp_path: Path, n: int, gen: str = "32.0 GT/s PCIe", width: str = "16") -> Path:
    """A /sys with the PCI functions of the stand-in's n devices: NUMA node 0, this process's CPUs."""
    root = tmp_path / "sys"
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    for j in range(n):
        d = root / "bus" / "pci" / "devices" / f"0000:{0x41 + 0x20 * (n - 1 - j):02x}:00.0"
        d.mkdir(parents=True)
        (d / "numa_node").write_text("0\n")
        (d / "local_cpulist").write_text(cpus + "\n")
        (d / "current_link_speed").write_text(gen + "\n")
        (d / "current_link_width").write_text(width + "\n")
    return root


def suite(
    tmp_path: Path,
    lib: str,
    n: int = 2,
    options: dict[str, Any] | None = None,
    expect: dict[str, Any] | None = None,
    missing: tuple[str, ...] = (),
    card: dict[str, Any] | None = None,
) -> SuiteResult:
    opts = {
        "memory_pct": 50,
        "copies": True,
        "copy_mib": 32,
        "copy_repeats": 3,
        "sysfs_root": str(sysfs(tmp_path, n)),
        **(options or {}),
    }
    h = Harness(tmp_path, {**EXPECT, "count": n, **(expect or {})}, opts)
    h.ctx.spec["duration_s"] = 1
    gpus = [FakeGpu(i, **(card or {})) for i in range(n)]
    return gpu_suite.run(h.ctx, lib=FakeNvml(gpus, missing=missing), stressor=CudaStressor.open(lib))


def by_component(result: SuiteResult, check: str) -> dict[str, Verdict]:
    return {f.component: f.verdict for f in find(result, check)}


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Gen5 x16 link's worth: 60 GB/s each way (floor 48), peers at 50 GB/s."""
    monkeypatch.setenv("FAKE_CUDA_H2D_GBS", "60")
    monkeypatch.setenv("FAKE_CUDA_D2H_GBS", "60")
    monkeypatch.setenv("FAKE_CUDA_PEER_GBS", "50")


def test_pcie_theoretical_rates_and_cpulists() -> None:
    assert pcie_theoretical_gbs(5, 16) == 64.0 and pcie_theoretical_gbs(4, 16) == 32.0
    assert (pcie_theoretical_gbs(5, 16) or 0) * 0.75 == 48.0 and (
        pcie_theoretical_gbs(4, 16) or 0
    ) * 0.75 == 24.0
    assert pcie_theoretical_gbs(None, 16) is None and pcie_theoretical_gbs(5, 0) is None
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    with pytest.raises(ValueError):
        parse_cpulist("zero")


def test_copies_at_the_links_rate_pass_with_affinity_and_peers(
    tmp_path: Path, libcuda: str, fast: None
) -> None:
    result = suite(tmp_path, libcuda, expect={"p2p": "expected", "peer_min_gbs": 40})
    for check in ("gpu_copy_h2d", "gpu_copy_d2h", "gpu_copy_both", "gpu_copy_data"):
        assert by_component(result, check) == {"gpu:0": Verdict.PASS, "gpu:1": Verdict.PASS}, check
    assert [f.verdict for f in find(result, "gpu_copy_spread")] == [Verdict.PASS] * 4
    for check in ("gpu_p2p_access", "gpu_p2p_bandwidth", "gpu_p2p_data"):
        assert by_component(result, check) == {"gpu:0->gpu:1": Verdict.PASS, "gpu:1->gpu:0": Verdict.PASS}, (
            check
        )
    hosts = result.measurements["copies"]["hosts"]
    assert [(h["index"], h["link_gen"], h["link_width"], h["numa_node"], h["pinned"]) for h in hosts] == [
        (0, 5, 16, 0, True),
        (1, 5, 16, 0, True),
    ]
    # the stand-in's clock runs only while the "device" works: modelled rates come back exactly
    assert [(h["h2d_gbs"], h["d2h_gbs"], h["both_gbs"]) for h in hosts] == [(60.0, 60.0, 120.0)] * 2  # duplex
    assert "Gen5 x16" in find(result, "gpu_copy_h2d")[0].expected
    peers = result.measurements["copies"]["peers"]
    assert {p["gbs"] for p in peers} == {50.0}
    assert {(p["src"], p["dst"], p["can_access"], p["via"]) for p in peers} == {
        (0, 1, True, "peer"),
        (1, 0, True, "peer"),
    }
    copies = [f for f in result.findings if f.check.startswith(("gpu_copy", "gpu_p2p"))]
    assert len(copies) == 18 and {f.verdict for f in copies} == {Verdict.PASS}  # 2 x (4 + 2 spread) + 2 x 3


def test_h2d_below_the_floor_fails(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_H2D_GBS", "30")  # a Gen5 x16 link moving Gen4 rates
    result = suite(tmp_path, libcuda)
    assert set(by_component(result, "gpu_copy_h2d").values()) == {Verdict.FAIL}
    assert set(by_component(result, "gpu_copy_d2h").values()) == {Verdict.PASS}
    f = find(result, "gpu_copy_h2d")[0]
    assert f.expected.startswith(">= 48.0 GB/s") and "GB/s" in f.observed


def test_one_slow_gpu_fails_its_floor_and_the_spread(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_DEVICES", "3")
    monkeypatch.setenv("FAKE_CUDA_SLOW_DEV", "0")  # CUDA ordinal 0 of 3 is NVML index 2
    monkeypatch.setenv("FAKE_CUDA_SLOW_FACTOR", "2")
    result = suite(tmp_path, libcuda, n=3, options={"copies": True})
    assert by_component(result, "gpu_copy_h2d") == {
        "gpu:0": Verdict.PASS,
        "gpu:1": Verdict.PASS,
        "gpu:2": Verdict.FAIL,
    }
    spread = {(f.component, f.id.rsplit(":", 1)[-1]): f.verdict for f in find(result, "gpu_copy_spread")}
    assert spread[("gpu:2", "h2d")] is Verdict.FAIL and spread[("gpu:0", "h2d")] is Verdict.PASS


def test_bytes_changed_on_the_way_fail_the_data_check(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_COPY_CORRUPT_DEV", "0")  # CUDA ordinal 0 of 2 is NVML index 1
    result = suite(tmp_path, libcuda)
    assert by_component(result, "gpu_copy_data") == {"gpu:0": Verdict.PASS, "gpu:1": Verdict.FAIL}
    assert find(result, "gpu_copy_data", "gpu:1")[0].observed == "2 bytes changed"  # one per round trip


@pytest.mark.parametrize("want,verdict", [("expected", Verdict.FAIL), ("absent", Verdict.PASS)])
def test_peer_access_absent_against_the_profile(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch, want: str, verdict: Verdict
) -> None:
    monkeypatch.setenv("FAKE_CUDA_P2P", "0")
    result = suite(tmp_path, libcuda, expect={"p2p": want, "peer_min_gbs": 40})
    assert set(by_component(result, "gpu_p2p_access").values()) == {verdict}
    # no peer path: the data still goes GPU -> host -> GPU and is checked; no peer floor applies
    assert set(by_component(result, "gpu_p2p_data").values()) == {Verdict.PASS}
    assert "through host memory" in find(result, "gpu_p2p_data")[0].expected
    assert find(result, "gpu_p2p_bandwidth") == []
    assert {p["via"] for p in result.measurements["copies"]["peers"]} == {"host"}


def test_a_peer_copy_that_changes_bits_fails(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_PEER_CORRUPT", "1")
    result = suite(tmp_path, libcuda, expect={"p2p": "expected"})
    assert set(by_component(result, "gpu_p2p_data").values()) == {Verdict.FAIL}
    assert set(by_component(result, "gpu_p2p_access").values()) == {Verdict.PASS}
    # no peer floor in the profile: measured and shown, not judged
    assert {(f.verdict, f.required) for f in find(result, "gpu_p2p_bandwidth")} == {
        (Verdict.INCONCLUSIVE, False)
    }


def test_peer_below_its_floor_fails(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_PEER_GBS", "20")
    result = suite(tmp_path, libcuda, expect={"p2p": "expected", "peer_min_gbs": 40})
    assert set(by_component(result, "gpu_p2p_bandwidth").values()) == {Verdict.FAIL}


def test_a_copy_that_cannot_run_is_inconclusive_never_a_pass(
    tmp_path: Path, libcuda: str, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_NO_HOST_ALLOC", "1")
    result = suite(tmp_path, libcuda)
    for check in ("gpu_copy_h2d", "gpu_copy_data"):
        found = find(result, check)
        assert found and {f.verdict for f in found} == {Verdict.INCONCLUSIVE}, check
    assert "CUDA_ERROR_OUT_OF_MEMORY" in find(result, "gpu_copy_h2d")[0].observed


def test_without_sysfs_the_link_is_nvmls_and_without_both_it_is_inconclusive(
    tmp_path: Path, libcuda: str, fast: None
) -> None:
    nowhere = {"sysfs_root": str(tmp_path / "nowhere")}
    # the fake NVML's cards hold Gen5 x16 (the stand-in libcuda does not mark them loaded: no idle Gen1)
    result = suite(tmp_path, libcuda, options=nowhere, card={"pcie_idle": (5, 16)})
    assert set(by_component(result, "gpu_copy_h2d").values()) == {Verdict.PASS}
    hosts = result.measurements["copies"]["hosts"]
    assert [(h["link_source"], h["link_gen"], h["pinned"]) for h in hosts] == [("nvml", 5, False)] * 2
    result = suite(tmp_path / "b", libcuda, options=nowhere, missing=("nvmlDeviceGetCurrPcieLinkGeneration",))
    assert set(by_component(result, "gpu_copy_h2d").values()) == {Verdict.INCONCLUSIVE}
    assert "unknown" in find(result, "gpu_copy_h2d")[0].observed


def test_copies_only_when_asked_and_never_without_libcuda(tmp_path: Path) -> None:
    h = Harness(tmp_path, {**EXPECT, "count": 2})
    lib = FakeNvml([FakeGpu(0), FakeGpu(1)])
    result = gpu_suite.run(h.ctx, lib=lib, stressor=FakeStressor(lib, None))
    assert not [f for f in result.findings if f.check.startswith(("gpu_copy", "gpu_p2p"))]
    h = Harness(tmp_path, {**EXPECT, "count": 2, "pcie_floor_pct": 75})  # the profile asks for copies
    lib = FakeNvml([FakeGpu(0), FakeGpu(1)])
    result = gpu_suite.run(h.ctx, lib=lib, stressor=FakeStressor(lib, None))
    assert [(f.check, f.verdict) for f in find(result, "gpu_copy_h2d")] == [
        ("gpu_copy_h2d", Verdict.INCONCLUSIVE)
    ]
    assert result.verdict is not Verdict.PASS
