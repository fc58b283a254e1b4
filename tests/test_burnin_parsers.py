"""Parsers against captured tool outputs (this VM's real ones, and documented formats of the
target hosts), failure outputs included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from burnin.parse_os import (
    parse_cpuinfo,
    parse_dmidecode_memory,
    parse_link_speed,
    parse_lsblk,
    parse_lscpu,
    parse_nvme_id_ctrl,
    parse_nvme_list,
)
from burnin.parse_tools import (
    critical_warning_bits,
    memtester_mask,
    parse_fio,
    parse_memtester,
    parse_nvme_smart_log,
    parse_smartctl,
    parse_stressng_log,
    parse_stressng_yaml,
    scan_kernel_log,
)
from burnin.schema import Verdict
from burnin.suites.cpu import stress_ng_verdict
from burnin.suites.memory import memtester_verdict, plan_sizes
from burnin.suites.nvme import fio_job_verdict

DATA = Path(__file__).parent / "data" / "burnin"


def text(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize(
    ("name", "model", "sockets", "cores", "threads", "logical", "numa", "family"),
    [
        ("lscpu-vm.json", None, 1, None, None, 2, 1, 6),
        ("lscpu-epyc-nested.json", "AMD EPYC 9655 96-Core Processor", 2, 96, 2, 384, 2, 26),
    ],
)
def test_lscpu(
    name: str,
    model: str | None,
    sockets: int,
    cores: int | None,
    threads: int | None,
    logical: int,
    numa: int,
    family: int,
) -> None:
    info = parse_lscpu(text(name))
    if model:
        assert info["model"] == model
    else:
        assert info["model"]  # the VM's Xeon string, whatever it is
    assert info["sockets"] == sockets
    assert info["logical_cpus"] == logical
    assert info["numa_nodes"] == numa
    assert info["family"] == family
    if cores:
        assert (info["cores_per_socket"], info["threads_per_core"]) == (cores, threads)


def test_lscpu_rejects_other_output() -> None:
    with pytest.raises(ValueError, match="lscpu -J: output is not JSON"):
        parse_lscpu("lscpu: unknown option -- J")


def test_cpuinfo_counts_logical_cpus() -> None:
    info = parse_cpuinfo(text("cpuinfo-vm.txt"))
    assert info["logical_cpus"] == 2
    assert len(info["mhz"]) == 2


def test_dmidecode_epyc_ddr5() -> None:
    parsed = parse_dmidecode_memory(text("dmidecode-epyc-ddr5.txt"))
    assert parsed["arrays"] == [{"ecc": "Multi-bit ECC", "max_capacity": "6 TB", "slots": 12}]
    present = [d for d in parsed["dimms"] if d.present]
    empty = [d for d in parsed["dimms"] if not d.present]
    assert len(present) == 2 and [d.locator for d in empty] == ["DIMMC1"]
    a1 = present[0]
    assert (a1.size_mib, a1.type, a1.rated_mts, a1.configured_mts) == (32768, "DDR5", 6400, 4800)
    assert (a1.part_number, a1.rank, a1.ecc, a1.socket, a1.channel) == ("M321R4GA3EB2-CCP", 2, True, 0, "A")
    assert empty[0].part_number is None and empty[0].size_mib is None


def test_dmidecode_without_smbios_is_an_error() -> None:
    with pytest.raises(ValueError, match="no SMBIOS entry point"):
        parse_dmidecode_memory(text("dmidecode-vm-fail.out"))


@pytest.mark.parametrize("name", ["nvme-list-flat.json", "nvme-list-nested.json"])
def test_nvme_list_both_layouts(name: str) -> None:
    (ns,) = parse_nvme_list(text(name))
    assert ns["device"] == "/dev/nvme0n1"
    assert ns["controller"] == "nvme0"
    assert ns["model"] == "Micron_9550_MTFDKCC3T8TGQ"
    assert ns["serial"] == "24414A1B2C3D"
    assert ns["firmware"] == "E2MU200"
    assert ns["capacity_bytes"] == 3840755982336


def test_nvme_list_failure_output() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_nvme_list(text("nvme-list-none.out"))


def test_nvme_id_ctrl_thresholds_in_celsius() -> None:
    c = parse_nvme_id_ctrl(text("nvme-id-ctrl.json"))
    assert (c["serial"], c["warning_temp_c"], c["critical_temp_c"]) == ("24414A1B2C3D", 70, 85)


@pytest.mark.parametrize(
    ("raw", "gen"),
    [
        ("32.0 GT/s PCIe", 5),
        ("16.0 GT/s PCIe", 4),
        ("8 GT/s", 3),
        ("2.5 GT/s", 1),
        ("Unknown", None),
        (None, None),
    ],
)
def test_link_speed(raw: str | None, gen: int | None) -> None:
    assert parse_link_speed(raw) == gen


def test_lsblk_vm() -> None:
    names = [d["name"] for d in parse_lsblk(text("lsblk-vm.json"))]
    assert "vda" in names


def test_stress_ng_ok_run() -> None:
    log = parse_stressng_log(text("stress-ng-cpu-ok.log"))
    assert log["fail_lines"] == [] and log["dispatched"] == {"cpu": 2} and log["completion"] == "successful"
    doc = parse_stressng_yaml(text("stress-ng-cpu-ok.yaml"))
    assert doc["system-info"]["cpus-online"] == 2
    assert doc["metrics"][0]["stressor"] == "cpu" and doc["metrics"][0]["bogo-ops"] == 3943
    assert stress_ng_verdict(0, log["fail_lines"]) is Verdict.PASS


def test_stress_ng_verification_failure() -> None:
    log = parse_stressng_log(text("stress-ng-cpu-fail.log"))
    assert len(log["fail_lines"]) == 2 and "verification failed" in log["fail_lines"][0]
    assert log["completion"] == "unsuccessful"
    assert stress_ng_verdict(2, log["fail_lines"]) is Verdict.FAIL
    # a fail: line fails the run even if the exit code says success
    assert stress_ng_verdict(0, log["fail_lines"]) is Verdict.FAIL


def test_stress_ng_resource_skip_is_inconclusive() -> None:
    log = parse_stressng_log(text("stress-ng-vm-resource.log"))
    assert log["fail_lines"] == [] and len(log["skipped_lines"]) == 1
    assert stress_ng_verdict(3, log["fail_lines"]) is Verdict.INCONCLUSIVE
    assert stress_ng_verdict(7, []) is Verdict.INCONCLUSIVE


def test_stress_ng_yaml_without_metrics() -> None:
    with pytest.raises(ValueError, match="no 'metrics:' section"):
        parse_stressng_yaml("---\nsystem-info:\n      cpus: 2\n...\n")


def test_memtester_ok_with_spinners() -> None:
    m = parse_memtester(text("memtester-ok.out"))
    assert m["done"] and m["locked"] and m["failures"] == [] and m["tested_bytes"] == 4 * 1024 * 1024
    assert m["tests"]["Stuck Address"] == "ok" and m["tests"]["16-bit Writes"] == "ok"
    assert memtester_verdict(0, m["failures"]) is Verdict.PASS


def test_memtester_failure_mask() -> None:
    m = parse_memtester(text("memtester-fail.out"))
    assert m["tests"]["Compare XOR"] == "FAILURE" and m["tests"]["Solid Bits"] == "FAILURE"
    assert m["failures"][0].startswith("Compare XOR: FAILURE: 0x5a5a")
    assert memtester_mask(0x04) == ["a data-pattern test failed"]
    assert memtester_mask(0x06) == ["stuck address test failed", "a data-pattern test failed"]
    assert memtester_verdict(0x04, m["failures"]) is Verdict.FAIL
    assert memtester_verdict(0x02, []) is Verdict.FAIL


def test_memtester_alloc_failure_is_inconclusive() -> None:
    m = parse_memtester(text("memtester-alloc-fail.out"))
    assert not m["done"] and m["tested_bytes"] is None
    assert memtester_mask(0x01) == ["could not allocate/lock memory or bad usage"]
    assert memtester_verdict(0x01, m["failures"]) is Verdict.INCONCLUSIVE


def test_fio_verify_failure_err84() -> None:
    parsed = parse_fio(text("fio-verify-fail.json"))
    assert parsed["version"] == "fio-3.33"
    assert parsed["jobs"][0]["error"] == 84
    assert fio_job_verdict(1, parsed["jobs"]) is Verdict.FAIL
    # fio's stdout on a verify failure is not JSON: the --output file is what we parse
    with pytest.raises(ValueError):
        parse_fio(text("fio-verify-fail.stdout"))


def test_fio_other_errors_are_inconclusive() -> None:
    jobs = [{"name": "seq_read", "error": 1}]
    assert fio_job_verdict(1, jobs) is Verdict.INCONCLUSIVE
    assert fio_job_verdict(0, []) is Verdict.INCONCLUSIVE
    assert fio_job_verdict(1, [{"name": "x", "error": 5}]) is Verdict.FAIL


def test_nvme_smart_log_ok_kelvin() -> None:
    h = parse_nvme_smart_log(text("nvme-smart-log-ok.json"))
    assert h["temperature_c"] == 36 and h["critical_warning"] == 0 and h["media_errors"] == 0
    assert (h["available_spare_pct"], h["spare_threshold_pct"], h["percentage_used"]) == (100, 5, 0)


def test_nvme_smart_log_critical_warning_object_and_strings() -> None:
    h = parse_nvme_smart_log(text("nvme-smart-log-critical-2.11.json"))
    assert h["critical_warning"] == 5
    assert critical_warning_bits(5) == [
        "available spare below threshold",
        "NVM subsystem reliability degraded",
    ]
    assert (h["temperature_c"], h["available_spare_pct"], h["media_errors"], h["warning_temp_time_min"]) == (
        78,
        3,
        12,
        17,
    )
    assert h["power_on_hours"] == 2031


def test_smartctl_sata_failing_bits() -> None:
    s = parse_smartctl(text("smartctl-sata-failing.json"))
    assert s["exit_status"] == 216 and s["readable"] and s["passed"] is False
    assert "SMART status: DISK FAILING" in s["bits"] and "the device error log has entries" in s["bits"]
    assert s["ata_attributes"][5]["raw"] == 168 and s["link_gbps"] == 6.0


def test_smartctl_nvme_and_unreadable_device() -> None:
    s = parse_smartctl(text("smartctl-nvme-ok.json"))
    assert s["readable"] and s["nvme"]["temperature_c"] == 36 and s["nvme"]["critical_warning"] == 0
    vm = parse_smartctl(text("smartctl-vda.json"))
    assert not vm["readable"] and vm["messages"] == ["/dev/vda: Unable to detect device type"]


def test_kernel_log_hardware_errors() -> None:
    lines = [
        "mce: [Hardware Error]: Machine check events logged",
        "EDAC MC0: 1 CE on DIMM P0 CHANNEL A (csrow:0 channel:0 page:0x1234 offset:0x0 grain:64)",
        "pcieport 0000:40:01.1: AER: Corrected error received: 0000:41:00.0",
        "nvme nvme0: I/O 12 QID 3 timeout, aborting",
        "systemd[1]: Started Session 4 of user root.",
    ]
    assert scan_kernel_log(lines) == lines[:4]


def test_memory_sizing_keeps_headroom() -> None:
    gib = 1024 * 1024
    sizes = plan_sizes({}, avail_kib=20 * gib, total_kib=24 * gib, cpus=4, budget_s=10)
    assert sizes["usable_mib"] < 20 * 1024 * 0.9
    assert sizes["vm_kib_per_worker"] * 4 <= (sizes["usable_mib"] + 1) * 1024
    assert sizes["memtester_mib"] == 20  # one loop of 10 s at 2 MiB/s
    capped = plan_sizes({"max_mib": 256}, avail_kib=20 * gib, total_kib=24 * gib, cpus=2, budget_s=1000)
    assert capped["usable_mib"] == 256 and capped["memtester_mib"] == 128


def test_md_mirror_state() -> None:
    from burnin.suites.boot_disks import mirror_state

    arrays = mirror_state(text("mdstat-degraded.txt"), ["sda", "sdb"])
    assert arrays == [
        {"array": "md126", "level": "raid1", "members": "UU"},
        {"array": "md127", "level": "raid1", "members": "U_"},
    ]
    assert mirror_state(text("mdstat-degraded.txt"), ["nvme0n1"]) == []


def _snap(name: str, parser: Any) -> dict[str, Any]:
    parsed = parser(text(name))
    key = "nvme" if parser is parse_nvme_smart_log else "smartctl"
    return {"smartctl": None, "nvme": None, key: parsed, "errors": [], "evidence": [name]}


def test_nvme_health_findings_from_captured_logs() -> None:
    from burnin.suites.common import Report
    from burnin.suites.health import judge_nvme_health

    rep = Report("nvme")
    before = _snap("nvme-smart-log-ok.json", parse_nvme_smart_log)
    after = _snap("nvme-smart-log-critical-2.11.json", parse_nvme_smart_log)
    judge_nvme_health(rep, "nvme:S1", before, after, required=True)
    f = {x.check: x for x in rep.findings}
    assert f["nvme_critical_warning"].verdict is Verdict.FAIL
    assert "available spare below threshold" in f["nvme_critical_warning"].observed
    assert (
        f["nvme_media_errors"].verdict is Verdict.FAIL
        and f["nvme_media_errors"].observed == "12 (+12 during the suite)"
    )
    assert f["nvme_spare"].verdict is Verdict.FAIL and f["nvme_warning_temp_time"].observed == "+17 min"
    assert f["nvme_wear"].verdict is Verdict.FAIL and not f["nvme_wear"].required
    assert f["nvme_critical_warning"].evidence == [
        "nvme-smart-log-ok.json",
        "nvme-smart-log-critical-2.11.json",
    ]
    clean = Report("nvme")
    judge_nvme_health(clean, "nvme:S1", before, before, required=True)
    assert all(x.verdict is Verdict.PASS for x in clean.findings)


def test_smartctl_findings_failing_sata_and_unreadable() -> None:
    from burnin.suites.common import Report
    from burnin.suites.health import judge_ata, judge_smartctl

    rep = Report("boot_disks")
    failing = _snap("smartctl-sata-failing.json", parse_smartctl)
    judge_smartctl(rep, "disk:sda", failing, required=True)
    judge_ata(rep, "disk:sda", failing, failing)
    f = {x.check: x for x in rep.findings}
    assert f["smart_status"].verdict is Verdict.FAIL and "DISK FAILING" in f["smart_status"].observed
    assert f["smart_history"].verdict is Verdict.FAIL and not f["smart_history"].required
    assert f["ata_error_attributes"].observed == "Reallocated_Sector_Ct=168, Reported_Uncorrect=3"
    assert f["ata_crc_errors"].verdict is Verdict.PASS  # 2 before and after: no growth
    vm = Report("boot_disks")
    judge_smartctl(vm, "disk:vda", _snap("smartctl-vda.json", parse_smartctl), required=True)
    assert vm.findings[0].verdict is Verdict.INCONCLUSIVE
    assert "Unable to detect device type" in vm.findings[0].observed


def test_edac_increments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EDAC counters in a sysfs-shaped tree: a UE increment fails, CE within policy passes."""
    from burnin import hostio

    mc = tmp_path / "devices/system/edac/mc/mc0"
    (mc / "dimm0").mkdir(parents=True)
    for f, v in (
        ("ce_count", "0"),
        ("ue_count", "0"),
        ("dimm0/dimm_ce_count", "0"),
        ("dimm0/dimm_ue_count", "0"),
    ):
        (mc / f).write_text(v + "\n")
    (mc / "dimm0" / "dimm_label").write_text("P0 CHANNEL A\n")
    monkeypatch.setattr(hostio, "SYS", tmp_path)
    from burnin.context import SuiteContext
    from burnin.suites.common import HealthWatch, Report

    ctx = SuiteContext(tmp_path, {}, {"expect": {"memory": {"edac_ce_max": 5}}}, print, print, print, print)
    watch = HealthWatch()
    before = hostio.edac_snapshot()
    assert before == {"mc0": {"ce": 0, "ue": 0}, "P0 CHANNEL A": {"ce": 0, "ue": 0}}
    (mc / "ue_count").write_text("1\n")
    (mc / "ce_count").write_text("3\n")
    (mc / "dimm0" / "dimm_ue_count").write_text("1\n")
    after = hostio.edac_snapshot()
    assert after is not None
    assert hostio.edac_deltas(before, after) == {
        "mc0": {"ce": 3, "ue": 1},
        "P0 CHANNEL A": {"ce": 0, "ue": 1},
    }
    rep = Report("memory")
    watch.judge(rep, ctx, ecc_expected=True)
    edac = next(f for f in rep.findings if f.check == "edac_errors")
    assert edac.verdict is Verdict.FAIL and edac.expected == "CE delta <= 5, UE delta <= 0"
    assert "mc0: +3 CE +1 UE" in edac.observed
    monkeypatch.setattr(hostio, "SYS", tmp_path / "absent")
    assert hostio.edac_snapshot() is None
