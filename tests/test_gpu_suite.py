"""The GPU suite end to end against the fake NVML (real pynvml constants and exceptions) and a fake
CUDA stressor, one test per verdict; plus the real pynvml and the real libcuda loader on this GPU-less
host, which must give honest 'no driver' verdicts instead of crashing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pynvml
import pytest

from burnin import nvml as nvml_adapter
from burnin.context import SuiteContext, ToolRun
from burnin.gpu_load import CudaStressor, CudaUnavailable
from burnin.schema import Evidence, Finding, SuiteResult, Verdict
from burnin.suites import gpu as gpu_suite
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeStressor, healthy_result

EXPECT = {
    "count": 4,
    "name": "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
    "memory_mib": 97887,
    "memory_tolerance_pct": 0.5,
    "pcie_gen": 5,
    "pcie_width": 16,
    "power_limit_w": 300,
    "ecc_required": True,
    "temp_margin_c": 5,
    "throughput_spread_pct": 7,
    "min_tflops": 60,
    "mem_bandwidth_gbs": 1792,
    "feed_continuous_w": 4992,
    "non_gpu_draw_w": 1500,
}


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        expect: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ):
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.samplers: dict[str, Any] = {}
        self.phases: list[str] = []
        self.tools: list[list[str]] = []
        self.tool_output: dict[str, str] = {}
        opts = {"sample_interval_s": 0.02, **(options or {})}
        self.ctx = SuiteContext(
            run_dir=tmp_path,
            spec={"suite": "gpu", "duration_s": 2, "required": True, "options": opts},
            plan={"expect": {"gpus": dict(EXPECT if expect is None else expect)}},
            log=lambda event, **f: self.events.append((event, f)),
            run_tool=self.run_tool,
            add_sampler=lambda name, fn: self.samplers.__setitem__(name, fn),
            mark_phase=self.phases.append,
            stop=threading.Event(),
        )

    def run_tool(
        self, evidence_id: str, argv: list[str], timeout_s: float, artifact: str | None = None, **_: Any
    ) -> ToolRun:
        self.tools.append(argv)
        out = self.tool_output.get(evidence_id)
        return ToolRun(
            evidence=Evidence(id=evidence_id, command=argv, exit_code=0 if out is not None else None),
            stdout=out or "",
            stderr="",
            missing=out is None,
        )


def four(**changes: Any) -> list[FakeGpu]:
    return [FakeGpu(index=i, **changes) for i in range(4)]


def run(
    tmp_path: Path,
    gpus: list[FakeGpu],
    expect: dict[str, Any] | None = None,
    results: Any = None,
    missing: tuple[str, ...] = (),
    options: dict[str, Any] | None = None,
) -> tuple[SuiteResult, Harness, FakeNvml]:
    h = Harness(tmp_path, expect, options)
    lib = FakeNvml(gpus, missing=missing)
    stressor = FakeStressor(lib, results)
    return gpu_suite.run(h.ctx, lib=lib, stressor=stressor), h, lib


def find(result: SuiteResult, check: str, component_prefix: str = "") -> list[Finding]:
    return [f for f in result.findings if f.check == check and f.component.startswith(component_prefix)]


def verdicts(result: SuiteResult, check: str) -> list[Verdict]:
    return [f.verdict for f in find(result, check)]


def test_healthy_node_passes_with_evidence_and_telemetry(tmp_path: Path) -> None:
    result, h, lib = run(tmp_path, four())
    assert result.verdict is Verdict.PASS, [
        f for f in result.findings if f.verdict is not Verdict.PASS and f.required
    ]
    assert verdicts(result, "gpu_count") == [Verdict.PASS]
    for check in (
        "gpu_name",
        "gpu_memory",
        "gpu_ecc_mode",
        "gpu_pcie_link",
        "gpu_xid",
        "gpu_clock_events",
        "gpu_temperature",
        "gpu_stress_result",
        "gpu_throughput_compute",
        "gpu_throughput_memory",
    ):
        assert verdicts(result, check) == [Verdict.PASS] * 4, check
    pcie = find(result, "gpu_pcie_link", "gpu:0")[0]
    assert pcie.observed.startswith("Gen5 x16")  # read under load, not the idle Gen1
    assert find(result, "gpu_node_power")[0].observed.startswith("2660 W")  # 4 x 290 W + 1500 W
    assert lib.shutdown_called
    assert h.phases == ["gpu.load", "gpu.idle"]
    assert h.samplers["gpu"]() == {}  # no stale values once the suite is over
    per_gpu = result.measurements["per_gpu"]
    assert [p["tflops"] for p in per_gpu] == [95.0] * 4 and per_gpu[0]["max_temp_c"] == 70
    assert result.measurements["gpus"][2]["pci_device_id"] == "0x2bb4"
    assert {e.id for e in result.evidence} >= {"gpu.nvml", "gpu.stress"}


def test_the_stressor_the_suite_opens_itself_is_the_one_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's runner passes no stressor: the suite opens libcuda itself, and its load threads
    must run on that one (they once ran on None, and every GPU failed 'stressor did not run')."""
    h = Harness(tmp_path)
    lib = FakeNvml(four())
    opened = FakeStressor(lib, None)
    monkeypatch.setattr(gpu_suite.CudaStressor, "open", classmethod(lambda cls, path="": opened))
    result = gpu_suite.run(h.ctx, lib=lib)
    assert verdicts(result, "gpu_stress_result") == [Verdict.PASS] * 4
    assert [p["tflops"] for p in result.measurements["per_gpu"]] == [95.0] * 4


def test_cuda_ordinals_are_matched_to_nvml_by_pci_bus(tmp_path: Path) -> None:
    slow = {3: healthy_result(device=None, tflops=50.0)}  # type: ignore[arg-type]
    result, _, _ = run(tmp_path, four(), results=slow)
    assert result.measurements["per_gpu"][3]["tflops"] == 50.0  # NVML index 3 is CUDA ordinal 0 here
    assert find(result, "gpu_throughput_compute", "gpu:3")[0].verdict is Verdict.FAIL
    assert find(result, "gpu_throughput_compute_floor", "gpu:3")[0].verdict is Verdict.FAIL
    assert find(result, "gpu_throughput_compute", "gpu:0")[0].verdict is Verdict.PASS


def test_count_name_memory_mismatches_fail(tmp_path: Path) -> None:
    gpus = [FakeGpu(0), FakeGpu(1, name="NVIDIA L40S", memory_mib=46068), FakeGpu(2)]
    result, _, _ = run(tmp_path, gpus)
    assert result.verdict is Verdict.FAIL
    count = find(result, "gpu_count")[0]
    assert (count.expected, count.observed, count.verdict) == ("4", "3", Verdict.FAIL)
    assert find(result, "gpu_name", "gpu:1")[0].observed == "NVIDIA L40S"
    assert verdicts(result, "gpu_name") == [Verdict.PASS, Verdict.FAIL, Verdict.PASS]
    assert verdicts(result, "gpu_memory") == [Verdict.PASS, Verdict.FAIL, Verdict.PASS]


def test_fatal_xid_mid_run_fails_that_gpu_and_other_xids_warn(tmp_path: Path) -> None:
    gpus = four()
    gpus[2].xid_after_samples = [(2, 79)]  # fell off the bus, reported while the load runs
    gpus[0].xid_after_samples = [(2, 13)]  # graphics engine exception: not in the fatal list
    result, h, _ = run(tmp_path, gpus)
    assert find(result, "gpu_xid", "gpu:2")[0].verdict is Verdict.FAIL
    assert "79" in find(result, "gpu_xid", "gpu:2")[0].observed
    assert find(result, "gpu_xid", "gpu:0")[0].verdict is Verdict.WARN
    assert find(result, "gpu_xid", "gpu:1")[0].verdict is Verdict.PASS
    assert result.verdict is Verdict.FAIL
    assert sorted((e["gpu"], e["xid"]) for e in result.measurements["xid_events"]) == [(0, 13), (2, 79)]
    assert ("gpu_xid", {"gpu": 2, "xid": 79}) in h.events


def test_gpu_lost_mid_run_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    gpus = four()
    gpus[1].lose_after_samples = 2
    result, h, lib = run(tmp_path, gpus)
    present = find(result, "gpu_present", "gpu:1")[0]
    assert present.verdict is Verdict.FAIL and "GpuIsLost" in present.observed
    assert find(result, "gpu_present", "gpu:0")[0].verdict is Verdict.PASS
    assert result.verdict is Verdict.FAIL
    assert any(event == "gpu_lost" and f["gpu"] == 1 for event, f in h.events)
    assert lib.shutdown_called


def test_older_driver_missing_functions_are_not_available_not_errors(tmp_path: Path) -> None:
    missing = (
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetRemappedRows",
        "nvmlDeviceGetFieldValues",
        "nvmlDeviceGetGpuMaxPcieLinkGeneration",
    )
    gpus = four(clock_events_load=0x4 | 0x40)  # HW thermal slowdown, seen through the pre-R535 call
    result, _, _ = run(tmp_path, gpus, missing=missing)
    gaps = result.measurements["nvml_gaps"]
    assert "NVMLError_FunctionNotFound" in gaps["gpu0.remapped_rows"]
    assert gaps["gpu0.remapped_rows"].startswith("not available")
    assert verdicts(result, "gpu_clock_events") == [Verdict.FAIL] * 4
    assert "HwThermalSlowdown" in find(result, "gpu_clock_events", "gpu:0")[0].observed
    remap = find(result, "gpu_row_remap", "gpu:0")[0]
    assert remap.verdict is Verdict.INCONCLUSIVE and not remap.required
    assert result.measurements["gpus"][0]["pcie_gen_gpu_max"] is None


def test_sw_power_cap_alone_passes_but_slowdown_counters_fail(tmp_path: Path) -> None:
    gpus = four()
    gpus[3].fields = {pynvml.NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN: 0}
    gpus[3].fields_after_load = {pynvml.NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN: 1_500_000}
    result, _, _ = run(tmp_path, gpus)
    assert verdicts(result, "gpu_clock_events") == [Verdict.PASS] * 3 + [Verdict.FAIL]
    assert "hw_power_brake_ns" in find(result, "gpu_clock_events", "gpu:3")[0].observed


def test_ecc_and_row_remap_errors(tmp_path: Path) -> None:
    unc_vol = (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC)
    corr_vol = (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC)
    gpus = four()
    gpus[0].ecc_after_load = {unc_vol: 1}
    gpus[1].remapped_rows = (0, 0, 1, 0)  # a remap pending
    gpus[2].ecc_after_load = {corr_vol: 3}
    gpus[3].ecc_mode = (0, 0)
    result, _, _ = run(tmp_path, gpus)
    assert find(result, "gpu_ecc_uncorrected", "gpu:0")[0].verdict is Verdict.FAIL
    assert find(result, "gpu_row_remap", "gpu:1")[0].verdict is Verdict.FAIL
    corrected = find(result, "gpu_ecc_corrected", "gpu:2")[0]
    assert (corrected.observed, corrected.verdict) == ("+3", Verdict.WARN)
    assert find(result, "gpu_ecc_mode", "gpu:3")[0].verdict is Verdict.FAIL
    assert find(result, "gpu_ecc_uncorrected", "gpu:3")[0].verdict is Verdict.INCONCLUSIVE


def test_temperature_margin_and_pcie_downtrained_under_load(tmp_path: Path) -> None:
    gpus = four()
    gpus[1].temp_load_c = 87  # slowdown 90 - margin 5 = 85
    gpus[2].pcie_load = (4, 16)
    gpus[3].pcie_load = (5, 8)
    result, _, _ = run(tmp_path, gpus)
    temp = find(result, "gpu_temperature", "gpu:1")[0]
    assert temp.verdict is Verdict.FAIL and temp.expected.startswith("≤ 85")
    assert verdicts(result, "gpu_pcie_link") == [Verdict.PASS, Verdict.PASS, Verdict.FAIL, Verdict.FAIL]


def test_stress_mismatches_faults_and_a_divergent_reference(tmp_path: Path) -> None:
    bad_compute = healthy_result(device=None)  # type: ignore[arg-type]
    bad_compute.compute.mismatches = 12
    odd = healthy_result(device=None)  # type: ignore[arg-type]
    odd.compute.reference_digest = "e" * 64
    fault = healthy_result(device=None)  # type: ignore[arg-type]
    fault.memory.error, fault.memory.fault = (
        "cuLaunchKernel(mem_check) failed: CUDA_ERROR_ECC_UNCORRECTABLE (214)",
        True,
    )
    result, _, _ = run(tmp_path, four(), results={0: bad_compute, 1: odd, 2: fault})
    assert verdicts(result, "gpu_stress_result") == [Verdict.FAIL, Verdict.FAIL, Verdict.FAIL, Verdict.PASS]
    assert "ECC_UNCORRECTABLE" in find(result, "gpu_stress_result", "gpu:2")[0].observed
    assert "differs" in find(result, "gpu_stress_result", "gpu:1")[0].observed


def test_a_setup_error_in_one_phase_keeps_the_other_phases_mismatches(tmp_path: Path) -> None:
    mem_bad = healthy_result(device=None)  # type: ignore[arg-type]
    mem_bad.compute.error = "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (2)"  # compute: setup error
    mem_bad.memory.mismatched_words = 3
    compute_bad = healthy_result(device=None)  # type: ignore[arg-type]
    compute_bad.compute.mismatches = 5
    compute_bad.memory.error = "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (2)"  # memory: setup error
    setup_only = healthy_result(device=None)  # type: ignore[arg-type]
    setup_only.memory.error = "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (2)"
    result, _, _ = run(tmp_path, four(), results={0: mem_bad, 1: compute_bad, 2: setup_only})
    got = verdicts(result, "gpu_stress_result")
    assert got == [Verdict.FAIL, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.PASS]
    assert "memory 3 mismatched" in find(result, "gpu_stress_result", "gpu:0")[0].observed
    assert "compute 5," in find(result, "gpu_stress_result", "gpu:1")[0].observed
    per_gpu = result.measurements["per_gpu"]
    assert (per_gpu[0]["memory_mismatches"], per_gpu[1]["compute_mismatches"]) == (3, 5)


def test_node_peak_power_over_the_feed_fails(tmp_path: Path) -> None:
    result, _, _ = run(tmp_path, four(power_load_mw=600_000), expect={**EXPECT, "feed_continuous_w": 3000})
    power = find(result, "gpu_node_power")[0]
    assert power.verdict is Verdict.FAIL and power.observed.startswith("3900 W")


def test_no_floor_in_profile_is_inconclusive_but_not_blocking(tmp_path: Path) -> None:
    exp = {k: v for k, v in EXPECT.items() if k not in ("min_tflops", "feed_continuous_w")}
    result, _, _ = run(tmp_path, four(), expect=exp)
    floor = find(result, "gpu_throughput_compute_floor", "gpu:0")[0]
    assert floor.verdict is Verdict.INCONCLUSIVE and not floor.required
    mem_floor = find(result, "gpu_throughput_memory_floor", "gpu:0")[0]
    assert mem_floor.verdict is Verdict.PASS and "1433.6" in mem_floor.expected  # 80% of 1792 GB/s
    assert result.verdict is Verdict.PASS


@pytest.mark.parametrize(("count", "verdict"), [(4, Verdict.FAIL), (0, Verdict.INCONCLUSIVE)])
def test_no_driver_fake_init_error(tmp_path: Path, count: int, verdict: Verdict) -> None:
    h = Harness(tmp_path, {"count": count} if count else {})
    lib = FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    result = gpu_suite.run(h.ctx, lib=lib)
    assert result.verdict is verdict
    assert "NVMLError_DriverNotLoaded" in find(result, "gpu_driver")[0].observed


def test_real_pynvml_without_a_driver_here(tmp_path: Path) -> None:
    """This host has no NVIDIA driver: the real pynvml must fail nvmlInit, and the suite say so."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present here; the no-driver path cannot be exercised")
    result = gpu_suite.run(Harness(tmp_path).ctx)
    assert result.verdict is Verdict.FAIL
    assert find(result, "gpu_driver")[0].observed.startswith("nvmlInit failed: NVMLError_")
    gaps: dict[str, str] = {}
    assert nvml_adapter.os_gpus(gaps) == []
    assert gaps["gpus"].startswith("nvmlInit failed")


def test_real_libcuda_loader_without_a_driver_here(tmp_path: Path) -> None:
    """No libcuda here: the real loader raises CudaUnavailable and the stress checks are inconclusive."""
    try:
        CudaStressor.open()
    except CudaUnavailable as exc:
        reason = str(exc)
    else:
        pytest.skip("libcuda loads here; the no-CUDA path cannot be exercised")
    h = Harness(tmp_path)
    result = gpu_suite.run(h.ctx, lib=FakeNvml(four()))  # stressor=None: the real loader is tried
    stress = find(result, "gpu_stress_result", "gpu:0")[0]
    assert stress.verdict is Verdict.INCONCLUSIVE and reason in stress.observed
    assert (
        find(result, "gpu_pcie_link", "gpu:0")[0].verdict is Verdict.INCONCLUSIVE
    )  # idle link proves nothing
    assert result.verdict is Verdict.INCONCLUSIVE


def test_os_gpus_inventory_from_nvml(tmp_path: Path) -> None:
    gaps: dict[str, str] = {}
    gpus = nvml_adapter.os_gpus(gaps, lib=FakeNvml(four(), missing=("nvmlDeviceGetSerial",)))
    assert [g.index for g in gpus] == ["0", "1", "2", "3"]
    g = gpus[1]
    assert (g.name, g.memory_mib, g.pci_device_id, g.pci_bus_id) == (
        EXPECT["name"],
        97887,
        "0x2bb4",
        "00000000:61:00.0",
    )
    assert (g.pcie_gen_max, g.pcie_width_max, g.power_limit_w, g.compute_capability) == (5, 16, 300.0, "12.0")
    assert (g.ecc_enabled, g.driver_version, g.serial) == (True, "575.57.08", None)
    assert "FunctionNotFound" in gaps["gpu1.serial"]


def test_third_party_tools_requested_but_missing_are_inconclusive(tmp_path: Path) -> None:
    result, h, _ = run(
        tmp_path, four(), options={"gpu_burn": True, "dcgm_level": 1, "gpu_burn_dir": "/opt/gpu-burn"}
    )
    assert not any(argv[0] in ("env", "gpu_burn") for argv in h.tools)  # never `env -C`; no such dir
    burn = find(result, "gpu_burn")[0]
    assert burn.verdict is Verdict.INCONCLUSIVE
    assert burn.observed == "gpu_burn could not run: gpu_burn_dir /opt/gpu-burn does not exist"
    assert find(result, "gpu_dcgm_diag")[0].observed == "dcgmi is not installed"
    assert result.verdict is Verdict.INCONCLUSIVE


def test_dcgm_runs_at_the_plans_level_and_a_missing_dcgmi_is_optional(tmp_path: Path) -> None:
    result, h, _ = run(tmp_path, four(), options={"dcgm_level": 3})
    # held to the profile's figures (300 W limit, 1792 GB/s x 80%, Gen5 x16), not DCGM's SKU defaults
    params = (
        "targeted_power.target_power=285.0;memory_bandwidth.minimum_bandwidth=1433600;"
        "pcie.h2d_d2h_single_pinned.min_pci_generation=5.0;pcie.h2d_d2h_single_pinned.min_pci_width=16.0;"
        "pcie.h2d_d2h_single_unpinned.min_pci_generation=5.0;pcie.h2d_d2h_single_unpinned.min_pci_width=16.0"
    )
    assert ["dcgmi", "diag", "-r", "3", "-p", params, "-j"] in h.tools
    dcgm = find(result, "gpu_dcgm_diag")[0]
    assert (dcgm.verdict, dcgm.observed, dcgm.required) == (
        Verdict.INCONCLUSIVE,
        "dcgmi is not installed",
        False,
    )
    assert result.verdict is Verdict.PASS  # an optional inconclusive does not block the suite


def test_cancelled_run_is_inconclusive_but_keeps_what_it_saw(tmp_path: Path) -> None:
    gpus = four()
    gpus[0].temp_load_c = 95
    h = Harness(tmp_path)
    lib = FakeNvml(gpus)
    stressor = FakeStressor(lib, run_s=30)
    threading.Timer(0.3, h.ctx.stop.set).start()
    result = gpu_suite.run(h.ctx, lib=lib, stressor=stressor)
    assert result.error == "cancelled before the load finished"
    assert find(result, "gpu_run_complete")[0].verdict is Verdict.INCONCLUSIVE
    assert (
        find(result, "gpu_temperature", "gpu:0")[0].verdict is Verdict.FAIL
    )  # a fault seen is still a fault
    assert result.verdict is Verdict.FAIL


def test_fake_nvml_models_real_pynvml_functions_only() -> None:
    """The fake must not drift from the real binding: same names, same number of parameters."""
    import inspect

    modelled = [n for n in vars(FakeNvml) if n.startswith("nvml")]
    assert len(modelled) > 30
    for name in modelled:
        real = inspect.signature(getattr(pynvml, name))
        fake = inspect.signature(getattr(FakeNvml, name))
        required = [p for p in real.parameters.values() if p.default is inspect.Parameter.empty]
        assert len(required) == len(fake.parameters) - 1, name  # less `self`


def test_gpu_burn_missing_in_its_dir_is_a_missing_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`env -C DIR gpu_burn` hid a missing gpu_burn behind env's own exit 127 ("printed no final
    per-GPU table"); started directly in DIR, a missing gpu_burn is reported as missing."""
    from burnin.tools import ToolRunner

    bin_dir, burn_dir = tmp_path / "bin", tmp_path / "gpu-burn"
    bin_dir.mkdir()
    burn_dir.mkdir()
    (bin_dir / "env").symlink_to("/usr/bin/env")  # env is there, gpu_burn is not
    monkeypatch.setenv("PATH", str(bin_dir))
    h = Harness(tmp_path, options={"gpu_burn": True, "gpu_burn_dir": str(burn_dir)})
    h.ctx.run_tool = ToolRunner(tmp_path / "run", h.ctx.log, h.ctx.stop)
    result = gpu_suite.run(h.ctx, lib=FakeNvml(four()), stressor=FakeStressor(FakeNvml(four())))
    burn = find(result, "gpu_burn")[0]
    assert (burn.verdict, burn.observed) == (Verdict.INCONCLUSIVE, "gpu_burn is not installed")


def test_gpu_burn_testing_fewer_gpus_than_expected_fails(tmp_path: Path) -> None:
    h = Harness(tmp_path, options={"gpu_burn": True})
    h.tool_output["gpu.gpu_burn"] = (Path(__file__).parent / "data/gpu/gpu_burn_healthy_2gpu.txt").read_text()
    lib = FakeNvml(four())
    result = gpu_suite.run(h.ctx, lib=lib, stressor=FakeStressor(lib))
    burn = find(result, "gpu_burn")[0]
    assert burn.verdict is Verdict.FAIL and "tested 2 GPUs" in burn.observed and "expected 4" in burn.observed
    assert result.verdict is Verdict.FAIL
