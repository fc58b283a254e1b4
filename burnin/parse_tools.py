"""Pure parsers for the load generators and health tools: stress-ng (log + YAML), memtester, fio
JSON, smartctl JSON, `nvme smart-log` JSON and the kernel log. Text in, plain values out.

Exit codes are read with their documented meaning, and never alone: each tool's own report is
parsed too (stress-ng `fail:` lines, memtester FAILURE lines, fio per-job errors).
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

# ---- stress-ng ---------------------------------------------------------------------------------

# stress-ng(1) EXIT STATUS
STRESS_NG_EXIT = {
    0: "success",
    1: "error: bad options or a fatal issue",
    2: "one or more stressors failed",
    3: "one or more stressors failed to initialise (not enough resources)",
    4: "one or more stressors were not implemented on this system",
    5: "stressor killed by an unexpected signal",
    6: "stressor exited for an unexpected reason",
    7: "bogo-ops may be untrustworthy (e.g. OOM killed)",
}


def _scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_stressng_yaml(text: str) -> Dict[str, Any]:
    """stress-ng `--yaml` output (a small fixed YAML subset) -> {section: dict | list of dicts}.

    Sections are top-level `name:` lines; `- key: value` starts a list item.
    """
    if "metrics:" not in text:
        raise ValueError("stress-ng YAML: no 'metrics:' section")
    doc: Dict[str, Any] = {}
    section: Optional[str] = None
    item: Optional[Dict[str, Any]] = None
    for raw in text.splitlines():
        if not raw.strip() or raw.strip() in ("---", "..."):
            continue
        if not raw.startswith(" "):
            section = raw.rstrip(":").strip()
            doc[section] = {}
            item = None
            continue
        if section is None:
            continue
        line = raw.strip()
        if line.startswith("- "):
            if not isinstance(doc[section], list):
                doc[section] = []
            item = {}
            doc[section].append(item)
            line = line[2:]
        key, sep, value = line.partition(":")
        if not sep:
            continue
        target = item if isinstance(doc[section], list) and item is not None else doc[section]
        if isinstance(target, dict):
            target[key.strip()] = _scalar(value)
    if not isinstance(doc.get("metrics"), list) or not doc["metrics"]:
        raise ValueError("stress-ng YAML: the 'metrics' section has no stressor entries")
    return doc


_SNG_LINE = re.compile(r"^stress-ng:\s+(\w+):\s+\[(\d+)\]\s?(.*)$")


def parse_stressng_log(text: str) -> Dict[str, Any]:
    """stress-ng's stderr/log lines -> fail/error/skipped lines, dispatched hogs, completion."""
    fails: List[str] = []
    errors: List[str] = []
    skipped: List[str] = []
    dispatched: Dict[str, int] = {}
    completion: Optional[str] = None
    for line in text.splitlines():
        m = _SNG_LINE.match(line.strip())
        if not m:
            continue
        level, msg = m.group(1), m.group(3).strip()
        summary = re.match(r"(failed|skipped): (\d+)", msg)  # 0.15+ end-of-run tallies
        if level == "fail" or (summary and summary.group(1) == "failed" and int(summary.group(2))):
            fails.append(line.strip())
        elif level == "error":
            errors.append(line.strip())
        elif level == "skip" or (summary and summary.group(1) == "skipped" and int(summary.group(2))):
            skipped.append(line.strip())
        hogs = re.match(r"dispatching hogs: (.*)$", msg)
        if hogs:
            for part in hogs.group(1).split(","):
                n, _, name = part.strip().partition(" ")
                if n.isdigit():
                    dispatched[name.strip()] = int(n)
        if "successful run completed" in msg:
            completion = "unsuccessful" if "unsuccessful" in msg else "successful"
    return {
        "fail_lines": fails,
        "error_lines": errors,
        "skipped_lines": skipped,
        "dispatched": dispatched,
        "completion": completion,
    }


# ---- memtester ---------------------------------------------------------------------------------

MEMTESTER_BITS = {
    0x01: "could not allocate/lock memory or bad usage",
    0x02: "stuck address test failed",
    0x04: "a data-pattern test failed",
}


def memtester_mask(code: int) -> List[str]:
    """memtester's exit code is a bit mask; each set bit is one kind of failure."""
    return [text for bit, text in MEMTESTER_BITS.items() if code & bit]


def parse_memtester(text: str) -> Dict[str, Any]:
    """memtester output (spinners and backspaces included) -> per-test ok/FAILURE and bytes tested."""
    clean = text.replace("\b", "")
    got = re.search(r"got\s+(\d+)MB \((\d+) bytes\)", clean)
    tests: Dict[str, str] = {}
    failures: List[str] = []
    for line in clean.splitlines():
        m = re.match(r"^\s{2}([A-Za-z0-9 -]+?)\s*:\s*(.*)$", line)
        if not m:
            continue
        name, rest = m.group(1).strip(), m.group(2)
        if "FAILURE" in rest:
            tests[name] = "FAILURE"
            failures.append(f"{name}: {rest[rest.index('FAILURE') :].strip()}")
        elif rest.rstrip().endswith("ok"):
            tests.setdefault(name, "ok")
    return {
        "tested_bytes": int(got.group(2)) if got else None,
        "locked": "locked." in clean,
        "tests": tests,
        "failures": failures,
        "done": "Done." in clean,
    }


# ---- fio ---------------------------------------------------------------------------------------

FIO_ERRORS = {84: "verify failed (EILSEQ)", 5: "I/O error (EIO)", 61: "no data (ENODATA)"}
_PCTS = {"p50": "50.000000", "p99": "99.000000", "p99_9": "99.900000", "p99_99": "99.990000"}


def _direction(d: Dict[str, Any]) -> Dict[str, Any]:
    clat = d.get("clat_ns") or {}
    pct = clat.get("percentile") or {}
    out: Dict[str, Any] = {
        "io_bytes": int(d.get("io_bytes", 0)),
        "bw_bytes_per_s": float(d.get("bw_bytes", float(d.get("bw", 0)) * 1024)),
        "iops": float(d.get("iops", 0.0)),
        "runtime_ms": int(d.get("runtime", 0)),
        "lat_mean_us": round(float((d.get("lat_ns") or {}).get("mean", 0.0)) / 1000, 2),
    }
    for key, name in _PCTS.items():
        out["clat_" + key + "_us"] = round(float(pct[name]) / 1000, 2) if name in pct else None
    return out


def parse_fio(text: str) -> Dict[str, Any]:
    """fio `--output-format=json --output=FILE` -> per-job errors, throughput and latency percentiles."""
    start = text.find("{")  # defensively skip anything fio printed before the document
    if start < 0:
        raise ValueError("fio: no JSON document in the output")
    try:
        doc = json.loads(text[start:])
    except ValueError as exc:
        raise ValueError(f"fio: output is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise ValueError("fio JSON: no 'jobs' list")
    jobs = []
    for job in doc["jobs"]:
        jobs.append(
            {
                "name": job.get("jobname"),
                "error": int(job.get("error", 0)),
                "read": _direction(job.get("read") or {}),
                "write": _direction(job.get("write") or {}),
            }
        )
    return {"version": doc.get("fio version"), "jobs": jobs}


def fio_error_text(code: int) -> str:
    return FIO_ERRORS.get(code, f"errno {code}")


# ---- SMART / NVMe health -----------------------------------------------------------------------

SMARTCTL_BITS = {
    0: "command line did not parse",
    1: "device open failed",
    2: "a SMART or ATA command failed",
    3: "SMART status: DISK FAILING",
    4: "prefail attributes at or below threshold",
    5: "attributes were at or below threshold in the past",
    6: "the device error log has entries",
    7: "the self-test log has errors",
}
# Bits that mean "could not look" rather than "the disk is bad".
SMARTCTL_CANNOT_READ = {0, 1, 2}

NVME_CRITICAL_WARNING = {
    0x01: "available spare below threshold",
    0x02: "temperature above or below threshold",
    0x04: "NVM subsystem reliability degraded",
    0x08: "media placed in read-only mode",
    0x10: "volatile memory backup failed",
    0x20: "persistent memory region read-only",
}


def smartctl_bits(status: int) -> List[Tuple[int, str]]:
    return [(bit, text) for bit, text in SMARTCTL_BITS.items() if status & (1 << bit)]


def critical_warning_bits(value: int) -> List[str]:
    return [text for bit, text in NVME_CRITICAL_WARNING.items() if value & bit]


def _num(value: Any) -> Optional[int]:
    """nvme-cli emits numbers as ints, strings ("0x0", "1,234") or {"value": N} objects by version."""
    if isinstance(value, dict):
        value = value.get("value", value.get("raw"))
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).replace(",", "").strip().rstrip("%")
    try:
        return int(text, 0)
    except ValueError:
        m = re.match(r"^(\d+)", text)
        return int(m.group(1)) if m else None


def _nvme_health(log: Dict[str, Any], kelvin: bool) -> Dict[str, Any]:
    temp = _num(log.get("temperature"))
    return {
        "critical_warning": _num(log.get("critical_warning")),
        "temperature_c": (temp - 273 if kelvin else temp) if temp is not None else None,
        "available_spare_pct": _num(log.get("available_spare", log.get("avail_spare"))),
        "spare_threshold_pct": _num(log.get("available_spare_threshold", log.get("spare_thresh"))),
        "percentage_used": _num(log.get("percentage_used", log.get("percent_used"))),
        "media_errors": _num(log.get("media_errors")),
        "error_log_entries": _num(log.get("num_err_log_entries")),
        "warning_temp_time_min": _num(log.get("warning_temp_time")),
        "critical_temp_time_min": _num(log.get("critical_comp_time")),
        "power_on_hours": _num(log.get("power_on_hours")),
        "unsafe_shutdowns": _num(log.get("unsafe_shutdowns")),
    }


def parse_nvme_smart_log(text: str) -> Dict[str, Any]:
    """`nvme smart-log -o json` -> normalized health (temperature converted from Kelvin)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"nvme smart-log: output is not JSON ({exc})") from None
    if not isinstance(doc, dict) or "critical_warning" not in doc:
        raise ValueError("nvme smart-log: no 'critical_warning' field")
    return _nvme_health(doc, kelvin=True)


def parse_smartctl(text: str) -> Dict[str, Any]:
    """`smartctl -a -j DEV` -> exit-status bits, overall status, temperature, NVMe or ATA health."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"smartctl -j: output is not JSON ({exc})") from None
    meta = doc.get("smartctl") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or "exit_status" not in meta:
        raise ValueError("smartctl -j: no smartctl.exit_status")
    status = int(meta["exit_status"])
    out: Dict[str, Any] = {
        "exit_status": status,
        "bits": [text for _, text in smartctl_bits(status)],
        "readable": not any(bit in SMARTCTL_CANNOT_READ for bit, _ in smartctl_bits(status)),
        "messages": [m.get("string", "") for m in meta.get("messages", [])],
        "passed": (doc.get("smart_status") or {}).get("passed"),
        "temperature_c": (doc.get("temperature") or {}).get("current"),
        "model": doc.get("model_name"),
        "serial": doc.get("serial_number"),
        "protocol": (doc.get("device") or {}).get("protocol"),
    }
    nvme = doc.get("nvme_smart_health_information_log")
    if isinstance(nvme, dict):
        out["nvme"] = _nvme_health(nvme, kelvin=False)  # smartctl already reports Celsius
    table = (doc.get("ata_smart_attributes") or {}).get("table")
    if isinstance(table, list):
        attrs = {}
        for row in table:
            raw = (row.get("raw") or {}).get("value")
            attrs[int(row["id"])] = {
                "name": row.get("name"),
                "value": row.get("value"),
                "thresh": row.get("thresh"),
                "raw": _num(raw),
            }
        out["ata_attributes"] = attrs
    speed = (doc.get("interface_speed") or {}).get("current") or {}
    if speed.get("units_per_second"):
        out["link_gbps"] = speed["units_per_second"] * speed.get("bits_per_unit", 0) / 1e9
    return out


# ---- kernel log --------------------------------------------------------------------------------

_HW_ERROR = re.compile(
    r"(mce: \[Hardware Error\]|Machine check|EDAC .*(CE|UE|error)|\bMCE\b|"
    r"PCIe Bus Error|AER: .*(Uncorrected|Corrected)|\bnvme\d+: .*(timeout|reset)|I/O error|"
    r"critical (medium|target) error)",
    re.IGNORECASE,
)


# I/O errors on an optical drive (sr0...): the BMC's virtual CD-ROM with no medium, not a disk fault
_OPTICAL_IO = re.compile(
    r"(I/O|critical (medium|target)) error.*\bdev\s+sr\d+\b|\[sr\d+\].*(I/O|medium) error", re.IGNORECASE
)


def scan_kernel_log(lines: List[str]) -> List[str]:
    """Kernel log lines that report hardware errors (MCE, EDAC, PCIe AER, NVMe resets, I/O errors, the
    block layer's "critical medium/target error"); those of sr* devices (BMC virtual media) are
    ignored, those of real disks kept."""
    return [line for line in lines if _HW_ERROR.search(line) and not _OPTICAL_IO.search(line)]
