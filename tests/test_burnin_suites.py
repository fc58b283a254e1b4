"""The agent's suites run for real at short durations: stress-ng, memtester, the triad (gcc), fio
on files and on loop block devices, with the write-safety refusals."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burnin import blockdev
from burnin.runner import Runner
from burnin.schema import RunResult, SuiteResult, Verdict
from tests.conftest import require_tool

pytestmark = pytest.mark.slow


def run_plan(tmp_path: Path, suites: list[dict[str, Any]], **plan: Any) -> RunResult:
    doc = {"run_id": "t1", "host": "test", "sample_interval_s": 0.5, "suites": suites, **plan}
    return Runner(doc, tmp_path / "run").run()


def findings(suite: SuiteResult) -> dict[str, Any]:
    return {f.id: f for f in suite.findings}


def test_cpu_suite_runs_stress_ng_on_every_cpu(tmp_path: Path) -> None:
    require_tool("stress-ng")
    result = run_plan(tmp_path, [{"suite": "cpu", "duration_s": 2}], expect={"cpu": {"logical_cpus": 4096}})
    (cpu,) = result.suites
    f = findings(cpu)
    assert f["cpu_stress:host"].verdict is Verdict.PASS
    assert f["cpu_workers:host"].verdict is Verdict.PASS
    assert f["cpu_metrics:host"].verdict is Verdict.PASS and cpu.measurements["bogo_ops"] > 0
    # the VM is not the profile: a mismatch is a finding, not a crash
    assert f["logical_cpus:cpu"].verdict is Verdict.FAIL and f["logical_cpus:cpu"].expected == "4096"
    assert cpu.verdict is Verdict.FAIL
    ev = next(e for e in cpu.evidence if e.id == "cpu.stress_ng")
    assert ev.exit_code == 0 and ev.command[0] == "stress-ng" and "--verify" in ev.command
    art = tmp_path / "run" / str(ev.artifact)
    assert hashlib.sha256(art.read_bytes()).hexdigest() == ev.sha256
    telemetry = [json.loads(line) for line in (tmp_path / "run" / "telemetry.jsonl").read_text().splitlines()]
    assert {"phase": "cpu"}.items() <= next(r for r in telemetry if r.get("phase") == "cpu").items()
    assert any("cpu.mhz_avg" in r.get("v", {}) for r in telemetry)


def test_missing_tool_is_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_plan(tmp_path, [{"suite": "cpu", "duration_s": 1}])
    f = findings(result.suites[0])
    assert f["cpu_stress:host"].verdict is Verdict.INCONCLUSIVE
    assert f["cpu_stress:host"].observed == "tool not found: stress-ng"
    assert result.suites[0].verdict is Verdict.INCONCLUSIVE


def test_crash_unknown_and_absent_suites_are_inconclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import burnin.suites.boot_disks as boot

    def boom(ctx: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(boot, "run", boom)
    monkeypatch.setitem(__import__("burnin.runner").runner.SUITES, "gpu", "burnin.suites.no_such_module")
    result = run_plan(
        tmp_path, [{"suite": "boot_disks"}, {"suite": "bogus", "required": False}, {"suite": "gpu"}]
    )
    by = {s.suite: s for s in result.suites}
    assert all(s.verdict is Verdict.INCONCLUSIVE for s in result.suites)
    assert by["boot_disks"].error == "suite boot_disks crashed: RuntimeError('boom')"
    assert by["bogus"].error is not None and "unknown suite 'bogus'" in by["bogus"].error
    assert [f.required for f in by["bogus"].findings] == [False]  # the plan said this suite is optional
    assert by["gpu"].error is not None and "not available in this agent" in by["gpu"].error
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"event":"suite_crashed"' in events and "RuntimeError: boom" in events


def test_memory_suite_stress_memtester_and_triad(tmp_path: Path) -> None:
    for tool in ("stress-ng", "memtester", "gcc"):
        require_tool(tool)
    opts = {"max_mib": 256, "triad_array_mib": 32, "triad_ntimes": 3, "memtester_instances": 1}
    result = run_plan(
        tmp_path,
        [{"suite": "memory", "duration_s": 4, "options": opts}],
        expect={"memory": {"peak_bandwidth_gbs": 1_000_000, "ecc": False, "dimm_count": 12}},
    )
    (mem,) = result.suites
    f = findings(mem)
    assert f["vm_stress:host"].verdict is Verdict.PASS
    assert f["memtester:memory"].verdict is Verdict.PASS, f["memtester:memory"].observed
    assert f["triad_check:memory"].verdict is Verdict.PASS
    assert mem.measurements["triad"]["check"] == "ok" and mem.measurements["triad_gbs"] > 0
    # far below a (deliberately absurd) peak: the finding says how far, with evidence
    tb = f["triad_bandwidth:memory"]
    assert tb.verdict is Verdict.FAIL and "% of peak" in tb.observed and tb.evidence == ["memory.triad"]
    assert mem.measurements["memtester_tested_mib"] >= 4
    # no SMBIOS on this VM: the DIMM check cannot be made, and says why
    dimms = f["dimm_count:memory"]
    assert dimms.verdict is Verdict.INCONCLUSIVE and "no SMBIOS entry point" in dimms.observed
    (dmi,) = [e for e in mem.evidence if e.id in dimms.evidence]
    assert dmi.command[0] == "dmidecode" and dmi.sha256 and dmi.artifact


def test_soak_loads_cpu_and_memory_together(tmp_path: Path) -> None:
    require_tool("stress-ng")
    opts = {"max_mib": 128, "memory_fraction": 0.05, "cpu_load_pct": 90}
    result = run_plan(tmp_path, [{"suite": "soak", "duration_s": 3, "options": opts}])
    (soak,) = result.suites
    f = findings(soak)
    assert f["cpu_stress:host"].verdict is Verdict.PASS and f["vm_stress:host"].verdict is Verdict.PASS
    ev = next(e for e in soak.evidence if e.id == "soak.stress_ng")
    assert ev.command[ev.command.index("--cpu-load") + 1] == "90" and "--vm" in ev.command
    assert soak.measurements["gpu_joined"] is False


def test_nvme_suite_on_a_scratch_file_writes_verifies_and_reads(tmp_path: Path) -> None:
    require_tool("fio")
    scratch = tmp_path / "scratch.dat"
    opts = {"files": [{"path": str(scratch), "size_mib": 16}], "destructive": True, "verify_size_mib": 8}
    result = run_plan(tmp_path, [{"suite": "nvme", "duration_s": 4, "options": opts}])
    (nv,) = result.suites
    f = findings(nv)
    assert f["verify_crc32c:file:scratch.dat"].verdict is Verdict.PASS
    assert f["fio_write_verify:file:scratch.dat"].verdict is Verdict.PASS
    assert f["fio_read:file:scratch.dat"].verdict is Verdict.PASS
    perf = nv.measurements["fio"]["file:scratch.dat"]
    assert perf["seq_read"]["bw_bytes_per_s"] > 0 and perf["rand_read"]["clat_p99_us"] is not None
    assert (tmp_path / "run" / "artifacts" / "nvme.fio.scratch.dat.read.fio").is_file()
    assert not scratch.exists()  # the agent removes the scratch file it created


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Three loop devices: one allow-listed and unused, one not allow-listed, one mounted."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    require_tool("losetup")
    require_tool("mkfs.ext4")
    devs: dict[str, Any] = {}
    mnt = tmp_path / "mnt"
    try:
        for name in ("free", "unlisted", "mounted"):
            img = tmp_path / f"{name}.img"
            img.write_bytes(b"")
            os.truncate(img, 64 * 1024 * 1024)
            out = subprocess.run(
                ["losetup", "-f", "--show", str(img)], capture_output=True, text=True, check=True
            )
            devs[name] = {"dev": out.stdout.strip(), "img": str(img)}
        subprocess.run(["mkfs.ext4", "-q", devs["mounted"]["dev"]], check=True)
        mnt.mkdir()
        subprocess.run(["mount", devs["mounted"]["dev"], str(mnt)], check=True)
        devs["mnt"] = str(mnt)
        yield devs
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        for d in devs.values():
            if isinstance(d, dict):
                subprocess.run(["losetup", "-d", d["dev"]], check=False)


def test_nvme_suite_on_loop_devices_writes_only_where_allowed_and_unused(
    tmp_path: Path, loops: dict[str, Any]
) -> None:
    require_tool("fio")
    allow = [
        {"path": loops["free"]["dev"], "backing_file": loops["free"]["img"]},
        {"path": loops["mounted"]["dev"], "backing_file": loops["mounted"]["img"]},
        # names the unlisted device's path but another file: must not match
        {"path": loops["unlisted"]["dev"], "backing_file": str(tmp_path / "other.img")},
    ]
    devices = [loops[n]["dev"] for n in ("free", "unlisted", "mounted")]
    opts = {"devices": devices, "destructive": True, "verify_size_mib": 16}
    boot = {"suite": "boot_disks", "duration_s": 1, "options": {"devices": [loops["free"]["dev"]]}}
    nvme = {"suite": "nvme", "duration_s": 4, "options": opts}
    nv, bd = run_plan(tmp_path, [nvme, boot], allow_destructive=allow).suites
    f = findings(nv)
    free, unlisted, mounted = (
        f"block:{os.path.basename(loops[n]['dev'])}" for n in ("free", "unlisted", "mounted")
    )
    assert f[f"verify_crc32c:{free}"].verdict is Verdict.PASS
    assert f[f"write_verify:{unlisted}"].verdict is Verdict.INCONCLUSIVE
    assert "is not allow-listed" in f[f"write_verify:{unlisted}"].observed
    assert f"verify_crc32c:{unlisted}" not in f
    refusal = f[f"write_verify:{mounted}"].observed
    assert (
        refusal.startswith("refused: allow-listed by loop device")
        and f"is mounted at {loops['mnt']}" in refusal
    )
    for comp in (free, unlisted, mounted):  # the read-only pass runs everywhere
        assert f[f"fio_read:{comp}"].verdict is Verdict.PASS
    read_job = (
        tmp_path / "run" / "artifacts" / f"nvme.fio.{os.path.basename(loops['mounted']['dev'])}.read.fio"
    )
    assert "rw=write" not in read_job.read_text()
    assert nv.verdict is Verdict.INCONCLUSIVE  # refused write passes leave integrity unproven
    # boot disks are only ever read; a loop device has no SMART, which is said, not passed
    b = findings(bd)
    assert b[f"fio_read:disk:{os.path.basename(loops['free']['dev'])}"].verdict is Verdict.PASS
    assert b[f"smart_status:disk:{os.path.basename(loops['free']['dev'])}"].verdict is Verdict.INCONCLUSIVE
    assert all("--readonly" in e.command for e in bd.evidence if e.command[:1] == ["fio"])


def test_root_filesystem_disk_is_refused() -> None:
    chain = blockdev.protected_devices()
    root = next(
        n for n, why in chain.items() if why.endswith("of the / filesystem") and not n.startswith("dm-")
    )
    reasons = blockdev.reasons_in_use(root)
    assert any("in the device chain of the / filesystem" in r for r in reasons), reasons
    # a loop allow-list rule never matches a real disk, even naming its path
    assert blockdev.allow_rule(root, [{"path": f"/dev/{root}", "backing_file": "/"}]) is None


def test_in_os_inventory_with_gaps_for_what_this_machine_lacks(tmp_path: Path) -> None:
    import threading

    from burnin.inventory import collect_inventory
    from burnin.tools import ToolRunner

    require_tool("lscpu")
    inv = collect_inventory(ToolRunner(tmp_path, lambda *a, **k: None, threading.Event()))
    assert inv.source == "os" and inv.logical_cpus == os.cpu_count()
    assert inv.cpus and inv.cpus[0].model and inv.memory_total_mib and inv.memory_total_mib > 0
    assert inv.system.kernel == os.uname().release and inv.system.os_name
    root = next(iter(blockdev.protected_devices()))
    assert any(d.name == root for d in inv.drives) or root.startswith(("dm-", "md"))
    # absent here, present on the hosts: each absence is a named gap, never a guess
    if not Path("/sys/class/nvme").exists() or not any(Path("/sys/class/nvme").iterdir()):
        assert (
            inv.gaps["drives.nvme"] == "no NVMe controllers in /sys/class/nvme" and not inv.drives[0].pcie_gen
        )
    if not Path("/sys/firmware/dmi").exists():
        assert inv.dimms == [] and "memory.dimms" in inv.gaps
    assert (tmp_path / "artifacts" / "inventory.lscpu.log").is_file()
