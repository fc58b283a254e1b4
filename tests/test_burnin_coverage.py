"""Issue #13, agent side: the measurements the controller's evidence contract is judged from. Memory
coverage (ram_mib, tested_mib), NVMe bytes per drive, the soak that loads CPUs and GPUs together (the
CPU share from expect.power.soak_cpu_load_pct, together_s, peak_node_power_w, max_temps), and the
kernel-log rule for medium errors. stress-ng, memtester and fio run for real; NVML/CUDA are faked
(no GPU here) with the fakes of the gpu suite's tests."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from burnin.context import SuiteContext, ToolRun
from burnin.hostio import meminfo_kib
from burnin.parse_tools import parse_fio, scan_kernel_log
from burnin.runner import Runner
from burnin.schema import Evidence, RunResult, SuiteResult, Verdict
from burnin.suites import gpu as gpu_suite
from burnin.suites import memory, soak
from burnin.suites.common import Report
from burnin.suites.cpu import judge_stress_ng
from burnin.suites.nvme import count_bytes
from burnin.suites.soak_figures import max_temps, peak_node_power
from tests.conftest import require_tool
from tests.support.fake_nvml import FakeGpu, FakeNvml
from tests.test_gpu_closed_form import TimedStressor

DATA = Path(__file__).parent / "data" / "burnin"
MIB = 1024 * 1024


def run_plan(tmp_path: Path, suites: list[dict[str, Any]], **plan: Any) -> RunResult:
    doc = {"run_id": "t1", "host": "test", "sample_interval_s": 0.25, "suites": suites, **plan}
    return Runner(doc, tmp_path / "run").run()


def by_id(result: SuiteResult) -> dict[str, Any]:
    return {f.id: f for f in result.findings}


# ---- kernel log ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        # print_req_error() of a real disk, kernel 5.x/6.x and the 4.x blk_update_request form
        (
            "critical medium error, dev sdb, sector 1953504 op 0x0:(READ) flags 0x80700 phys_seg 1 "
            "prio class 2",
            True,
        ),
        ("blk_update_request: critical medium error, dev sdc, sector 88012", True),
        (
            "critical target error, dev sdd, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0",
            True,
        ),
        # the BMC's virtual CD-ROM with nothing in it: not a disk fault
        (
            "critical medium error, dev sr0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
            False,
        ),
        (
            "sd 2:0:0:0: [sdb] tag#3 Sense Key : Medium Error [current]",
            False,
        ),  # the detail line, not the error
        ("EXT4-fs (sda2): mounted filesystem with ordered data mode", False),
    ],
)
def test_kernel_log_flags_medium_errors_of_real_disks(line: str, flagged: bool) -> None:
    assert scan_kernel_log([line]) == ([line] if flagged else [])


# ---- memory coverage -------------------------------------------------------------------------------


@pytest.mark.slow
def test_memory_reports_ram_and_the_share_one_verified_pass_covered(tmp_path: Path) -> None:
    for tool in ("stress-ng", "memtester", "gcc"):
        require_tool(tool)
    opts = {
        "max_mib": 256,
        "triad_array_mib": 32,
        "triad_ntimes": 3,
        "memtester_instances": 2,
        "vm_workers": 2,
    }
    result = run_plan(tmp_path, [{"suite": "memory", "duration_s": 4, "options": opts}])
    (mem,) = result.suites
    m = mem.measurements
    assert by_id(mem)["vm_stress:host"].verdict is Verdict.PASS
    assert m["ram_mib"] == meminfo_kib()["MemTotal"] // 1024
    assert m["vm_verified_mib"] == 2 * m["vm_kib_per_worker"] // 1024 > 0
    assert m["memtester_verified_mib"] == 2 * m["memtester_mib"]  # both instances passed their loop
    assert m["tested_mib"] == max(m["vm_verified_mib"], m["memtester_verified_mib"])  # overlap: not summed


def test_a_vm_pass_that_failed_or_did_nothing_covers_nothing(tmp_path: Path) -> None:
    sizes = {"vm_workers": 4, "vm_kib_per_worker": 65536}

    def judged(log: str, rc: int, ops: int) -> int:
        rep = Report("memory")
        yaml = f"---\nmetrics:\n    - stressor: vm\n      bogo-ops: {ops}\n...\n"
        run = ToolRun(Evidence(id="memory.stress_ng_vm", exit_code=rc), "", log)
        return memory.vm_verified_mib(rep, judge_stress_ng(rep, run, yaml, "vm", 4), sizes)

    ok = (
        "stress-ng: info:  [1] dispatching hogs: 4 vm\n"
        "stress-ng: info:  [1] successful run completed in 2.00s\n"
    )
    assert judged(ok, 0, 100) == 256
    assert judged(ok, 0, 0) == 0  # no bogo-ops: no pass happened
    assert judged(ok + "stress-ng: fail:  [7] vm: detected 1 bit errors\n", 2, 100) == 0
    assert judged(ok.replace("4 vm", "3 vm"), 0, 100) == 0  # a worker missing: the footprint is not whole


def test_memtester_counts_only_instances_that_passed_their_loop(tmp_path: Path) -> None:
    outputs = {
        "memory.memtester.0": (0, (DATA / "memtester-ok.out").read_text()),  # 4 MiB, all ok
        "memory.memtester.1": (4, (DATA / "memtester-fail.out").read_text()),  # 64 MiB with a failure
        "memory.memtester.2": (1, (DATA / "memtester-alloc-fail.out").read_text()),
    }

    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        rc, out = outputs[evidence_id]
        return ToolRun(Evidence(id=evidence_id, command=argv, exit_code=rc), out, "")

    ctx = SuiteContext(
        run_dir=tmp_path,
        spec={"suite": "memory", "duration_s": 2, "options": {}},
        plan={},
        log=lambda event, **f: None,
        run_tool=run_tool,
        add_sampler=lambda name, fn: None,
        mark_phase=lambda name: None,
    )
    rep = Report("memory")
    memory._memtester(rep, ctx, {"memtester_mib": 4, "memtester_instances": 3}, 1.0)
    assert rep.measurements["memtester_tested_mib"] == 4 + 64  # what ran, failed or not
    assert rep.measurements["memtester_verified_mib"] == 4  # what a passing loop covered
    assert memory.tested_mib({"memtester_verified_mib": 4}) == 4 and memory.tested_mib({}) == 0


# ---- NVMe bytes per drive --------------------------------------------------------------------------


@pytest.mark.slow
def test_nvme_bytes_written_and_read_per_drive_from_fio(tmp_path: Path) -> None:
    require_tool("fio")
    scratch = tmp_path / "scratch.dat"
    opts = {"files": [{"path": str(scratch), "size_mib": 16}], "destructive": True, "verify_size_mib": 8}
    result = run_plan(tmp_path, [{"suite": "nvme", "duration_s": 4, "options": opts}])
    (nv,) = result.suites
    drive = nv.measurements["per_drive"]["file:scratch.dat"]
    jobs = []
    for phase in ("write", "read"):
        art = tmp_path / "run" / "artifacts" / f"nvme.fio.scratch.dat.{phase}.json"
        jobs += parse_fio(art.read_text())["jobs"]
    assert drive == {
        "written_bytes": sum(j["write"]["io_bytes"] for j in jobs),
        "read_bytes": sum(j["read"]["io_bytes"] for j in jobs),
        "capacity_bytes": None,  # a scratch file is not a drive
    }
    verify = next(j for j in jobs if j["name"] == "verify")
    assert verify["write"]["io_bytes"] == 8 * MIB and verify["read"]["io_bytes"] == 8 * MIB
    assert drive["written_bytes"] >= 8 * MIB and drive["read_bytes"] > 8 * MIB


def test_nvme_bytes_of_a_job_that_failed_do_not_count() -> None:
    rep = Report("nvme")
    target = {
        "kind": "block",
        "name": "nvme0n1",
        "nvme": True,
        "sysfs": {"serial": "S6X1", "capacity_bytes": 3_840_755_982_336},
    }
    count_bytes(rep, target, parse_fio((DATA / "fio-verify-fail.json").read_text())["jobs"])
    drive = rep.measurements["per_drive"]["nvme:S6X1"]
    assert drive["capacity_bytes"] == 3_840_755_982_336
    assert drive["written_bytes"] == 0 and drive["read_bytes"] == 0  # the verify job ended with EILSEQ


# ---- the soak: CPUs and GPUs together --------------------------------------------------------------


class NoWatch:
    def judge(self, rep: Report, ctx: Any, ecc_expected: bool, edac: bool = True) -> None:
        pass


def fake_stress_ng(calls: list[list[str]]) -> Any:
    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        calls.append(argv)
        yaml = argv[argv.index("--yaml") + 1]
        Path(yaml).parent.mkdir(parents=True, exist_ok=True)
        Path(yaml).write_text(
            "---\nmetrics:\n    - stressor: cpu\n      bogo-ops: 10\n"
            "    - stressor: vm\n      bogo-ops: 10\n...\n"
        )
        hogs = f"stress-ng: info:  [1] dispatching hogs: {argv[2]} cpu, {argv[6]} vm\n"
        done = "stress-ng: info:  [1] successful run completed in 2.00s\n"
        return ToolRun(Evidence(id=evidence_id, command=argv, exit_code=0), "", hogs + done)

    return run_tool


def soak_ctx(
    tmp_path: Path, calls: list[list[str]], options: dict[str, Any] | None = None, **expect: Any
) -> SuiteContext:
    return SuiteContext(
        run_dir=tmp_path,
        spec={"suite": "soak", "duration_s": 2, "options": {"max_mib": 64, **(options or {})}},
        plan={"expect": expect},
        log=lambda event, **f: None,
        run_tool=fake_stress_ng(calls),
        add_sampler=lambda name, fn: None,
        mark_phase=lambda name: None,
        stop=threading.Event(),
    )


@pytest.fixture
def quiet_soak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soak, "HealthWatch", NoWatch)
    monkeypatch.setattr(soak, "nvme_namespaces", lambda: [])


@pytest.mark.slow
def test_soak_cpus_and_gpus_together_with_real_stress_ng_and_telemetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("stress-ng")
    lib = FakeNvml([FakeGpu(0), FakeGpu(1)])
    monkeypatch.setattr(
        gpu_suite, "soak_load", functools.partial(gpu_suite.soak_load, lib=lib, stressor=TimedStressor(lib))
    )
    expect = {"gpus": {"count": 2}, "power": {"soak_cpu_load_pct": 60, "stagger_cpu_gpu": True}}
    opts = {"max_mib": 64, "memory_fraction": 0.05}
    result = run_plan(tmp_path, [{"suite": "soak", "duration_s": 3, "options": opts}], expect=expect)
    (sk,) = result.suites
    m, f = sk.measurements, by_id(sk)
    ev = next(e for e in sk.evidence if e.id == "soak.stress_ng")
    assert ev.command[ev.command.index("--cpu-load") + 1] == "60" and "--timeout" in ev.command
    assert ev.command[ev.command.index("--timeout") + 1] == "3s"  # the whole soak, never half (no stagger)
    assert f["soak_gpu_joined:gpus"].verdict is Verdict.PASS and m["gpu_joined"] is True
    assert m["cpu_load_pct"] == 60 and m["gpus_joined"] == [0, 1]
    assert 1.5 <= m["together_s"] <= 3.5
    assert all(g.was_loaded for g in lib.gpus)
    assert m["peak_gpu_power_w"] == 580.0
    assert m["peak_node_power_w"] is not None and m["peak_node_power_w"] >= 580.0  # telemetry's GPU series
    rapl = any(Path("/sys/class/powercap").glob("*rapl:[0-9]"))
    assert ("peak_node_power_w" in m["gaps"]) is (not rapl)
    assert m["max_temps"]["gpu_c"] == 70.0
    assert f["cpu_stress:host"].verdict is Verdict.PASS


def test_soak_at_full_share_gets_no_cpu_load_flag(tmp_path: Path, quiet_soak: None) -> None:
    calls: list[list[str]] = []
    result = soak.run(soak_ctx(tmp_path, calls, power={"soak_cpu_load_pct": 100}))
    assert "--cpu-load" not in calls[0] and result.measurements["cpu_load_pct"] == 100
    assert result.measurements["together_s"] == 0.0 and result.measurements["gpu_joined"] is False
    assert "soak_gpu_joined:gpus" not in by_id(result)  # no GPUs expected: nothing to join


def test_soak_takes_the_lower_of_the_feed_share_and_the_plan_option(tmp_path: Path, quiet_soak: None) -> None:
    calls: list[list[str]] = []
    soak.run(soak_ctx(tmp_path, calls, {"cpu_load_pct": 90}, power={"soak_cpu_load_pct": 45}))
    assert calls[0][calls[0].index("--cpu-load") + 1] == "45"


@pytest.mark.parametrize("bad", [0, 101, 55.5, "60", True])
def test_a_bad_cpu_share_does_not_run_the_soak(tmp_path: Path, quiet_soak: None, bad: Any) -> None:
    calls: list[list[str]] = []
    result = soak.run(soak_ctx(tmp_path, calls, power={"soak_cpu_load_pct": bad}))
    assert calls == []  # a wrong share could overload the feed: nothing runs
    f = by_id(result)["soak_cpu_load_pct:host"]
    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.observed == f"expect.power.soak_cpu_load_pct must be an integer in 1..100, got {bad!r}"
    assert result.verdict is Verdict.INCONCLUSIVE


def test_gpus_expected_but_their_load_cannot_start_is_inconclusive(
    tmp_path: Path, quiet_soak: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pynvml

    lib = FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    monkeypatch.setattr(gpu_suite, "soak_load", functools.partial(gpu_suite.soak_load, lib=lib))
    result = soak.run(soak_ctx(tmp_path, [], gpus={"count": 4}))
    f = by_id(result)
    assert f["soak_gpu_load:gpus"].verdict is Verdict.INCONCLUSIVE
    joined = f["soak_gpu_joined:gpus"]
    assert joined.verdict is Verdict.INCONCLUSIVE and joined.required
    assert (
        joined.observed.startswith("0 of 4 expected GPUs loaded (0 listed by NVML), 0.0 s together")
        and "DriverNotLoaded" in joined.observed
    )
    assert f["cpu_stress:host"].verdict is Verdict.PASS
    assert result.verdict is Verdict.INCONCLUSIVE and result.measurements["together_s"] == 0.0


def test_a_crash_in_the_gpu_half_is_recorded_and_the_soak_not_passed(
    tmp_path: Path, quiet_soak: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(ctx: Any, duration_s: float) -> Any:
        raise KeyError("pci_bus_id")

    monkeypatch.setattr(gpu_suite, "soak_load", boom)
    result = soak.run(soak_ctx(tmp_path, [], gpus={"count": 2}))
    f = by_id(result)
    assert f["suite_thread:gpu"].observed == "crashed: KeyError: 'pci_bus_id'"
    assert f["soak_gpu_joined:gpus"].verdict is Verdict.INCONCLUSIVE
    assert result.verdict is Verdict.INCONCLUSIVE


def test_a_gpu_fault_during_the_soak_fails_it(
    tmp_path: Path, quiet_soak: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = [FakeGpu(0), FakeGpu(1)]
    gpus[1].lose_after_samples = 1
    lib = FakeNvml(gpus)
    monkeypatch.setattr(
        gpu_suite, "soak_load", functools.partial(gpu_suite.soak_load, lib=lib, stressor=TimedStressor(lib))
    )
    ctx = soak_ctx(tmp_path, [], {"sample_interval_s": 0.05}, gpus={"count": 2})
    result = soak.run(ctx)
    lost = [x for x in result.findings if x.check == "gpu_present" and x.component.startswith("gpu:1")]
    assert lost and lost[0].verdict is Verdict.FAIL
    assert result.verdict is Verdict.FAIL


# ---- the soak's figures from telemetry -------------------------------------------------------------


def figures_ctx(series: dict[str, list[tuple[float, float]]]) -> SuiteContext:
    def samples(prefix: str, since: float) -> list[tuple[float, float]]:
        return [p for name, pts in series.items() if name.startswith(prefix) for p in pts if p[0] >= since]

    return SuiteContext(
        run_dir=Path("."), spec={}, plan={}, log=lambda e, **f: None, run_tool=None,  # type: ignore[arg-type]
        add_sampler=lambda n, f: None, mark_phase=lambda n: None, samples=samples,
    )  # fmt: skip


def test_peak_node_power_sums_gpus_and_packages_tick_by_tick() -> None:
    ctx = figures_ctx(
        {
            "gpu0.power_w": [(1.0, 280.0), (2.0, 290.0), (3.0, 100.0)],
            "gpu1.power_w": [(1.0, 285.0), (2.0, 295.0), (3.0, 100.0)],
            "power.package-0.intel-rapl:0_w": [(2.0, 200.0), (3.0, 390.0)],
            "power.package-1.intel-rapl:1_w": [(2.0, 190.0), (3.0, 380.0)],
            "gpu0.temp_c": [(1.0, 60.0), (2.0, 71.5)],
            "temp.k10temp-0.Tctl": [(2.0, 80.0), (3.0, 83.25)],
        }
    )
    gaps: dict[str, str] = {}
    assert peak_node_power(ctx, 0.0, [0, 1], gaps) == 975.0 and gaps == {}  # tick 2: 585 + 390
    assert max_temps(ctx, 0.0, "temp.k10temp", [0, 1], 69.0) == {"cpu_c": 83.25, "gpu_c": 71.5}


def test_peak_node_power_without_series_is_none_with_the_gap_said() -> None:
    gaps: dict[str, str] = {}
    assert peak_node_power(figures_ctx({}), 0.0, [0], gaps) is None
    assert "neither GPU power" in gaps["peak_node_power_w"]
    gaps = {}
    cpu_only = figures_ctx({"power.package-0.intel-rapl:0_w": [(1.0, 310.0)]})
    assert (
        peak_node_power(cpu_only, 0.0, [0, 1], gaps) == 310.0 and "no GPU power" in gaps["peak_node_power_w"]
    )
    assert max_temps(cpu_only, 0.0, "temp.k10temp", [], None) == {"cpu_c": None, "gpu_c": None}


def test_the_result_round_trips_through_json(tmp_path: Path, quiet_soak: None) -> None:
    result = soak.run(soak_ctx(tmp_path, [], power={"soak_cpu_load_pct": 70}))
    doc = json.loads(json.dumps(result.measurements))
    assert {"together_s", "gpu_joined", "cpu_load_pct", "peak_node_power_w", "max_temps", "gaps"} <= set(doc)
