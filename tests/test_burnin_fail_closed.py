"""Issue #13, agent side: honest verdicts, failing closed. A crashed worker thread, a cancelled or
timed-out step, and missing or contradictory evidence end fail or inconclusive, never pass.
Each test here failed on the code before the fix."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from burnin import hostio
from burnin import inventory as inventory_mod
from burnin.context import SuiteContext, ToolRun
from burnin.hardware import HardwareInventory
from burnin.parse_tools import parse_fio, parse_nvme_smart_log, parse_stressng_log, scan_kernel_log
from burnin.runner import Runner
from burnin.schema import Evidence, RunResult, SuiteResult, Verdict, make_finding
from burnin.suites import boot_disks, memory, nvme, soak
from burnin.suites.common import Report
from burnin.suites.cpu import judge_stress_ng, stress_ng_verdict
from burnin.suites.health import judge_nvme_health
from burnin.suites.nvme import fio_job_verdict

DATA = Path(__file__).parent / "data" / "burnin"


def text(name: str) -> str:
    return (DATA / name).read_text()


class NoWatch:
    """Stands in for HealthWatch: this machine's kernel log is not under test here."""

    def judge(self, rep: Report, ctx: Any, ecc_expected: bool, edac: bool = True) -> None:
        pass


def context(
    tmp_path: Path, suite: str, options: dict[str, Any], run_tool: Any = None, **expect: Any
) -> SuiteContext:
    return SuiteContext(
        run_dir=tmp_path,
        spec={"suite": suite, "duration_s": 2, "required": True, "options": options},
        plan={"expect": expect},
        log=lambda event, **f: None,
        run_tool=run_tool or (lambda *a, **k: pytest.fail("no tool should run")),
        add_sampler=lambda name, fn: None,
        mark_phase=lambda name: None,
        stop=threading.Event(),
    )


def by_id(result: SuiteResult) -> dict[str, Any]:
    return {f.id: f for f in result.findings}


# ---- 1. a crashed worker thread is an inconclusive part, never a pass ----------------------------


def test_nvme_drive_thread_crash_is_inconclusive_not_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_fio_pass(rep: Report, ctx: Any, t: dict[str, Any], phase: str, *a: Any) -> None:
        if t["name"] == "b.dat":
            raise RuntimeError("fio job file for b.dat is unwritable")
        rep.add("fio_read", "file:a.dat", "exit 0", "exit 0, no job errors", Verdict.PASS)

    monkeypatch.setattr(nvme, "fio_pass", fake_fio_pass)
    monkeypatch.setattr(nvme, "HealthWatch", NoWatch)
    (tmp_path / "a.dat").write_bytes(b"x")
    (tmp_path / "b.dat").write_bytes(b"x")
    files = [{"path": str(tmp_path / "a.dat")}, {"path": str(tmp_path / "b.dat")}]
    result = nvme.run(context(tmp_path, "nvme", {"files": files}))
    f = by_id(result)
    crash = f["suite_thread:file:b.dat"]
    assert crash.verdict is Verdict.INCONCLUSIVE and crash.required
    assert crash.observed == "crashed: RuntimeError: fio job file for b.dat is unwritable"
    (ev,) = [e for e in result.evidence if e.id in crash.evidence]
    assert ev.error == "RuntimeError: fio job file for b.dat is unwritable" and "Traceback" in ev.excerpt
    assert f["fio_read:file:a.dat"].verdict is Verdict.PASS  # the other drive's result still counts
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.error is not None and "file:b.dat" in result.error


def test_memtester_thread_crash_is_inconclusive(tmp_path: Path) -> None:
    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        if evidence_id == "memory.memtester.1":
            raise OSError(24, "Too many open files")
        ev = Evidence(id=evidence_id, command=argv, exit_code=0)
        return ToolRun(evidence=ev, stdout=text("memtester-ok.out"), stderr="")

    rep = Report("memory")
    ctx = context(tmp_path, "memory", {}, run_tool)
    memory._memtester(rep, ctx, {"memtester_mib": 4, "memtester_instances": 2}, 1.0)
    f = {x.id: x for x in rep.findings}
    assert f["suite_thread:memtester.1"].verdict is Verdict.INCONCLUSIVE
    assert f["suite_thread:memtester.1"].observed == "crashed: OSError: [Errno 24] Too many open files"
    assert rep.result().verdict is not Verdict.PASS


def test_soak_fio_thread_crash_is_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any) -> None:
        raise ValueError("bad fio output")

    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        yaml = argv[argv.index("--yaml") + 1]
        Path(yaml).write_text(
            "---\nmetrics:\n    - stressor: cpu\n      bogo-ops: 10\n"
            "    - stressor: vm\n      bogo-ops: 10\n...\n"
        )
        hogs = f"stress-ng: info:  [1] dispatching hogs: {argv[2]} cpu, {argv[6]} vm\n"
        done = "stress-ng: info:  [1] successful run completed in 2.00s\n"
        return ToolRun(Evidence(id=evidence_id, command=argv, exit_code=0), "", hogs + done)

    monkeypatch.setattr(soak, "fio_pass", boom)
    monkeypatch.setattr(soak, "HealthWatch", NoWatch)
    monkeypatch.setattr(
        soak, "nvme_namespaces", lambda: [{"name": "nvme0n1", "device": "/dev/nvme0n1", "serial": "S6X1"}]
    )
    (tmp_path / "artifacts").mkdir()
    result = soak.run(context(tmp_path, "soak", {"max_mib": 64}, run_tool))
    f = by_id(result)
    assert f["cpu_stress:host"].verdict is Verdict.PASS
    assert f["suite_thread:nvme:S6X1"].observed == "crashed: ValueError: bad fio output"
    assert result.verdict is Verdict.INCONCLUSIVE


# ---- 2. a cancelled or timed-out suite is inconclusive, with a finding saying so -----------------


def run_plan(tmp_path: Path, suites: list[dict[str, Any]]) -> RunResult:
    doc = {"run_id": "t1", "host": "test", "sample_interval_s": 0.5, "suites": suites}
    return Runner(doc, tmp_path / "run").run()


def test_cancelled_memory_run_is_inconclusive_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def triad_then_cancel(rep: Report, ctx: SuiteContext, usable_mib: int) -> None:
        rep.add("triad_check", "memory", "verified", "0 bad elements", Verdict.PASS)
        ctx.stop.set()  # `stop` arrives while the triad runs

    monkeypatch.setattr(memory, "_triad", triad_then_cancel)
    monkeypatch.setattr(memory, "HealthWatch", NoWatch)
    result = run_plan(tmp_path, [{"suite": "memory", "duration_s": 2}])
    (mem,) = result.suites
    ran = by_id(mem)["suite_ran:memory"]
    assert ran.verdict is Verdict.INCONCLUSIVE and "cancelled" in ran.observed
    assert mem.error is not None and "cancelled" in mem.error
    assert mem.verdict is Verdict.INCONCLUSIVE


def test_timed_out_step_makes_any_suite_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def suite_with_timed_out_step(ctx: SuiteContext) -> SuiteResult:
        ok = make_finding("boot_disk_count", "boot", "1", "1", Verdict.PASS, "burnin")
        ev = Evidence(id="boot_disks.smartctl.sda.after", command=["smartctl"], error="timed out after 60 s")
        return SuiteResult("boot_disks", Verdict.PASS, time.time(), time.time(), findings=[ok], evidence=[ev])

    monkeypatch.setattr(boot_disks, "run", suite_with_timed_out_step)
    (suite,) = run_plan(tmp_path, [{"suite": "boot_disks"}]).suites
    ran = by_id(suite)["suite_ran:boot_disks"]
    assert ran.observed == "boot_disks.smartctl.sda.after timed out after 60 s"
    assert suite.verdict is Verdict.INCONCLUSIVE and suite.error == ran.observed
    # a failure seen before the interruption stays a failure
    from burnin.runner import interrupted

    failed = SuiteResult("x", Verdict.FAIL, 0.0, 0.0)
    assert interrupted(failed, cancelled=True).verdict is Verdict.FAIL and failed.error


# ---- 3. smaller items --------------------------------------------------------------------------


def _health(name: str) -> dict[str, Any]:
    return {"smartctl": None, "nvme": parse_nvme_smart_log(text(name)), "errors": [], "evidence": [name]}


@pytest.mark.parametrize(
    ("after", "verdict", "observed"),
    [
        ("nvme-smart-log-ok.json", Verdict.PASS, "0 (+0 during the suite)"),
        ("nvme-smart-log-critical-2.11.json", Verdict.FAIL, "12 (+12 during the suite)"),
        ("nvme-smart-log-no-media-errors.json", Verdict.INCONCLUSIVE, "field missing"),
    ],
)
def test_nvme_media_errors_missing_is_inconclusive(after: str, verdict: Verdict, observed: str) -> None:
    rep = Report("nvme")
    judge_nvme_health(rep, "nvme:S1", _health("nvme-smart-log-ok.json"), _health(after), required=True)
    f = {x.check: x for x in rep.findings}["nvme_media_errors"]
    assert (f.verdict, f.observed) == (verdict, observed)


@pytest.mark.parametrize(
    ("mdstat", "verdict", "says"),
    [
        ("mdstat-degraded.txt", Verdict.FAIL, "md127 raid1 [U_]"),
        ("mdstat-truncated.txt", Verdict.INCONCLUSIVE, "member map unreadable"),
        ("mdstat-raid0.txt", Verdict.FAIL, "md126 raid0 [?], md127 raid1 [UU] (not raid1)"),
        ("mdstat-auto-read-only.txt", Verdict.PASS, "md126 raid1 [UU], md127 raid1 [UU]"),
    ],
)
def test_boot_mirror_member_map_and_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mdstat: str, verdict: Verdict, says: str
) -> None:
    monkeypatch.setattr(boot_disks, "read", lambda path: text(mdstat))
    for name in ("_read_pass", "judge_smartctl", "judge_ata", "judge_nvme_health"):
        monkeypatch.setattr(boot_disks, name, lambda *a, **k: None)
    monkeypatch.setattr(boot_disks, "read_health", lambda *a, **k: {})
    ctx = context(tmp_path, "boot_disks", {"devices": ["/dev/sda", "/dev/sdb"]}, boot_disks={"raid": "raid1"})
    f = by_id(boot_disks.run(ctx))["boot_mirror:boot"]
    assert f.verdict is verdict and says in f.observed, f.observed


def test_zero_byte_read_pass_is_inconclusive() -> None:
    jobs = parse_fio(text("fio-read-zero-bytes.json"))["jobs"]
    assert jobs[0]["error"] == 0 and jobs[0]["read"]["io_bytes"] == 0
    assert fio_job_verdict(0, jobs) is Verdict.INCONCLUSIVE
    jobs[0]["read"]["io_bytes"] = 1048576  # the same pass, having read its megabyte
    assert fio_job_verdict(0, jobs) is Verdict.PASS


@pytest.mark.parametrize(
    ("log", "rc", "verdict", "says"),
    [
        ("stress-ng-cpu-ok.log", 0, Verdict.PASS, "exit 0"),
        (
            "stress-ng-cpu-error.log",
            0,
            Verdict.INCONCLUSIVE,
            "1 error: lines: stress-ng: error: [11583] cpu:",
        ),
        ("stress-ng-cpu-unsuccessful.log", 0, Verdict.INCONCLUSIVE, "unsuccessful run"),
        ("stress-ng-cpu-fail.log", 0, Verdict.FAIL, "verification failed"),
    ],
)
def test_stress_ng_error_and_unsuccessful_lines_are_judged(
    tmp_path: Path, log: str, rc: int, verdict: Verdict, says: str
) -> None:
    rep = Report("cpu")
    run = ToolRun(Evidence(id="cpu.stress_ng", command=["stress-ng"], exit_code=rc), "", text(log))
    judge_stress_ng(rep, run, text("stress-ng-cpu-ok.yaml"), "cpu", 2)
    f = {x.id: x for x in rep.findings}["cpu_stress:host"]
    assert f.verdict is verdict and says in f.observed, f.observed
    parsed = parse_stressng_log(text(log))
    assert stress_ng_verdict(rc, parsed["fail_lines"], parsed["error_lines"], parsed["completion"]) is verdict


def test_kernel_log_ignores_virtual_cdrom_io_errors_keeps_real_disks() -> None:
    lines = [line.split(";", 1)[1] for line in text("kmsg-virtual-media.txt").splitlines()]
    assert scan_kernel_log(lines) == [
        "I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
        "Buffer I/O error on dev sda1, logical block 0, async page read",
        "I/O error, dev sdb, sector 77 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0",
    ]


def test_inventory_invents_no_socket_when_lscpu_and_cpuinfo_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        ev = Evidence(
            id=evidence_id, command=argv, exit_code=1, excerpt="lscpu: failed to determine CPU count"
        )
        return ToolRun(evidence=ev, stdout="", stderr="")

    monkeypatch.setattr(hostio, "read", lambda path: None)
    inv = HardwareInventory(source="os", collected_at=0.0)
    inventory_mod._cpu(inv, run_tool)
    assert inv.cpus == []
    assert "cpu.sockets" in inv.gaps and "cpu.lscpu" in inv.gaps and "cpu.cpuinfo" in inv.gaps


def test_inventory_sockets_from_cpuinfo_when_lscpu_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_tool(evidence_id: str, argv: list[str], timeout_s: float, **_: Any) -> ToolRun:
        return ToolRun(
            Evidence(id=evidence_id, command=argv, error="tool not found: lscpu"), "", "", missing=True
        )

    monkeypatch.setattr(hostio, "read", lambda path: text("cpuinfo-vm.txt"))
    inv = HardwareInventory(source="os", collected_at=0.0)
    inventory_mod._cpu(inv, run_tool)
    assert len(inv.cpus) >= 1 and "cpu.sockets" not in inv.gaps
