"""NVMe suite: fio (JSON to a file) on every NVMe namespace, read-only (`fio --readonly`) by
default. Write workloads and a crc32c verify pass run only on a drive the plan allow-lists by
serial/WWN and the agent proves unused (burnin.blockdev); otherwise the pass is refused with every
reason. SMART / `nvme smart-log` before and after; PCIe link gen/width against the profile.

Options: devices (explicit block devices, e.g. loop devices in tests), files ([{path, size_mib}]:
scratch files the agent creates and may write), destructive, verify_size_mib, ioengine, numjobs.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Dict, List, Optional

from burnin import blockdev
from burnin.context import SuiteContext
from burnin.fiojob import READ_JOBS, WRITE_JOBS, build_job
from burnin.hostio import block_size_bytes, nvme_namespaces
from burnin.parse_tools import fio_error_text, parse_fio
from burnin.schema import Evidence, Verdict
from burnin.suites.common import HealthWatch, Report, start_thread
from burnin.suites.health import judge_nvme_health, judge_smartctl, read_health

SUITE = "nvme"


def fio_job_verdict(rc: Optional[int], jobs: List[Dict[str, Any]]) -> Verdict:
    """84 (verify) and 5 (EIO) are the drive's fault; any other error means fio could not judge, and
    neither does a job that moved zero bytes."""
    errors = [j["error"] for j in jobs if j["error"]]
    if any(e in (84, 5, 61) for e in errors):
        return Verdict.FAIL
    if errors or rc != 0 or not jobs:
        return Verdict.INCONCLUSIVE
    if any(moved_bytes(j) == 0 for j in jobs):  # a pass that read/wrote nothing tested nothing
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def moved_bytes(job: Dict[str, Any]) -> Optional[int]:
    """Bytes a fio job read plus wrote; None when the job has no throughput sections at all."""
    if "read" not in job and "write" not in job:
        return None
    return sum(int((job.get(d) or {}).get("io_bytes", 0)) for d in ("read", "write"))


def _targets(ctx: SuiteContext) -> List[Dict[str, Any]]:
    opts = ctx.options
    out: List[Dict[str, Any]] = []
    for dev in opts.get("devices", []):
        name = os.path.basename(os.path.realpath(dev))
        out.append({"kind": "block", "name": name, "path": "/dev/" + name, "nvme": name.startswith("nvme")})
    for f in opts.get("files", []):
        out.append(
            {
                "kind": "file",
                "name": os.path.basename(f["path"]),
                "path": f["path"],
                "size_mib": int(f.get("size_mib", 64)),
                "nvme": False,
            }
        )
    if not out:
        for ns in nvme_namespaces():
            out.append({"kind": "block", "name": ns["name"], "path": ns["device"], "nvme": True, "sysfs": ns})
    return out


def _component(t: Dict[str, Any]) -> str:
    ident = t.get("sysfs") or {}
    return f"nvme:{ident.get('serial') or t['name']}" if t["nvme"] else f"{t['kind']}:{t['name']}"


def _write_permission(ctx: SuiteContext, t: Dict[str, Any]) -> Dict[str, Any]:
    """{"allowed": bool, "why": text}: files the agent creates itself; devices allow-listed AND unused."""
    if t["kind"] == "file":
        if os.path.exists(t["path"]):
            return {
                "allowed": False,
                "why": f"{t['path']} exists; the agent only writes scratch files it creates",
            }
        return {"allowed": True, "why": "a scratch file the agent creates"}
    rule = blockdev.allow_rule(t["name"], ctx.allow_list())
    if rule is None:
        ident = blockdev.identity(t["name"])
        return {
            "allowed": False,
            "why": f"/dev/{t['name']} is not allow-listed (serial {ident['serial']}, wwn {ident['wwn']})",
        }
    reasons = blockdev.reasons_in_use(t["name"])
    if reasons:
        return {"allowed": False, "why": f"allow-listed by {rule}, but " + "; ".join(reasons)}
    return {
        "allowed": True,
        "why": f"allow-listed by {rule}; not mounted, not swap, no holders, off the root/boot chain",
    }


def fio_pass(
    rep: Report, ctx: SuiteContext, t: Dict[str, Any], phase: str, jobs: List[str], runtime_s: float
) -> Optional[Dict[str, Any]]:
    opts = dict(ctx.options)
    if t["kind"] == "file":
        opts["size_mib"] = t["size_mib"]
    ev_id = f"nvme.fio.{t['name']}.{phase}"
    job_rel = f"artifacts/{ev_id}.fio"
    out_rel = f"artifacts/{ev_id}.json"
    (ctx.run_dir / job_rel).write_text(build_job(t["path"], jobs, runtime_s, opts))
    argv = ["fio", "--output-format=json", f"--output={ctx.run_dir / out_rel}"]
    if phase == "read":
        argv.append("--readonly")
    argv.append(str(ctx.run_dir / job_rel))
    budget = runtime_s * len(jobs) + 120 + (3600 if "verify" in jobs else 0)
    r = rep.keep(ctx.run_tool(ev_id, argv, float(opts.get("timeout_s", budget)), artifact=out_rel))
    component = _component(t)
    check = "fio_read" if phase == "read" else "fio_write_verify"
    why = rep.cannot_run(r)
    parsed: Optional[Dict[str, Any]] = None
    if not why:
        try:
            parsed = parse_fio((ctx.run_dir / out_rel).read_text())
        except (OSError, ValueError) as exc:
            last = r.evidence.excerpt.splitlines()[-1] if r.evidence.excerpt else ""
            why = f"{exc} (exit {r.evidence.exit_code}: {last})"
    if parsed is None:
        rep.add(
            check,
            component,
            "fio completes with no job errors",
            why or "no output",
            Verdict.INCONCLUSIVE,
            [ev_id],
        )
        return None
    verdict = fio_job_verdict(r.evidence.exit_code, parsed["jobs"])
    errs = [
        f"{j['name']}: err={j['error']} {fio_error_text(j['error'])}" for j in parsed["jobs"] if j["error"]
    ]
    rep.add(
        check,
        component,
        "exit 0, every job error 0",
        f"exit {r.evidence.exit_code}" + (", " + "; ".join(errs) if errs else ", no job errors"),
        verdict,
        [ev_id],
    )
    perf = rep.measurements.setdefault("fio", {}).setdefault(component, {})
    for j in parsed["jobs"]:
        direction = "read" if "read" in j["name"] else "write"
        perf[j["name"]] = j[direction]
    count_bytes(rep, t, parsed["jobs"])
    if "verify" in jobs:
        vj = next((j for j in parsed["jobs"] if j["name"] == "verify"), None)
        ok = vj is not None and vj["error"] == 0 and vj["read"]["io_bytes"] > 0
        observed = (
            "no verify job"
            if vj is None
            else f"err={vj['error']} ({fio_error_text(vj['error']) if vj['error'] else 'none'}), "
            f"{vj['read']['io_bytes']} bytes read back"
        )
        rep.add(
            "verify_crc32c",
            component,
            "every block read back matches its crc32c",
            observed,
            Verdict.PASS if ok else (Verdict.FAIL if vj and vj["error"] in (84, 5) else Verdict.INCONCLUSIVE),
            [ev_id],
        )
    return parsed


def drive_bytes(rep: Report, t: Dict[str, Any]) -> Dict[str, Any]:
    """measurements["per_drive"][component]: {"written_bytes", "read_bytes", "capacity_bytes"}."""
    per_drive = rep.measurements.setdefault("per_drive", {})
    entry = per_drive.get(_component(t))
    if entry is None:
        entry = per_drive.setdefault(
            _component(t), {"written_bytes": 0, "read_bytes": 0, "capacity_bytes": _capacity(t)}
        )
    return entry  # type: ignore[no-any-return]


def count_bytes(rep: Report, t: Dict[str, Any], jobs: List[Dict[str, Any]]) -> None:
    """Add what fio moved to the drive's totals: each job's write direction (seq/rand write, the verify
    job's write) to written, its read direction (seq/rand read, the verify read-back) to read. A job
    that ended in an error proves no coverage and is not counted."""
    entry = drive_bytes(rep, t)
    for j in jobs:
        if j["error"]:
            continue
        entry["written_bytes"] += int(j["write"]["io_bytes"])
        entry["read_bytes"] += int(j["read"]["io_bytes"])


def _capacity(t: Dict[str, Any]) -> Optional[int]:
    """The drive's size in bytes from sysfs; None for a scratch file (its size is not a drive's)."""
    if t["kind"] != "block":
        return None
    cap = (t.get("sysfs") or {}).get("capacity_bytes")
    return int(cap) if cap else block_size_bytes(t["name"])


def _one_target(rep: Report, ctx: SuiteContext, t: Dict[str, Any], lock: threading.Lock) -> None:
    component = _component(t)
    destructive = bool(ctx.options.get("destructive"))
    duration = max(2.0, ctx.duration_s or 10)
    before = read_health(rep, ctx, t["path"], "before", nvme=True) if t["nvme"] else None
    may_write: Dict[str, Any] = {"allowed": False, "why": "the plan asks for read-only"}
    if destructive:
        may_write = _write_permission(ctx, t)
        with lock:
            rep.measurements.setdefault("write_permission", {})[component] = may_write
        if not may_write["allowed"]:
            rep.add(
                "write_verify",
                component,
                "an allow-listed, unused drive",
                "refused: " + may_write["why"],
                Verdict.INCONCLUSIVE,
            )
    if may_write["allowed"]:
        fio_pass(rep, ctx, t, "write", list(WRITE_JOBS), duration / 4)
    if t["kind"] == "file" and not os.path.exists(t["path"]):
        rep.add(
            "fio_read",
            component,
            "a laid-out scratch file",
            "the file was never written",
            Verdict.INCONCLUSIVE,
        )
    else:
        fio_pass(rep, ctx, t, "read", list(READ_JOBS), duration / (4 if may_write["allowed"] else 2))
    if t["kind"] == "file" and may_write["allowed"] and os.path.exists(t["path"]):
        os.unlink(t["path"])
    if before is not None:
        after = read_health(rep, ctx, t["path"], "after", nvme=True)
        judge_smartctl(rep, component, after, required=True)
        judge_nvme_health(rep, component, before, after, required=True)


def _expectations(rep: Report, ctx: SuiteContext, targets: List[Dict[str, Any]]) -> None:
    exp = ctx.expect("nvme")
    nvme = [t for t in targets if t["nvme"] and t.get("sysfs")]
    ev = ["nvme.sysfs"]
    rep.evidence.append(
        Evidence(
            id="nvme.sysfs",
            command=["read /sys/class/nvme/*/{model,serial,firmware_rev,device/current_link_*}"],
            excerpt="\n".join(json.dumps(t["sysfs"], sort_keys=True) for t in nvme),
        )
    )
    if exp.get("count") is not None:
        rep.add(
            "nvme_count",
            "nvme",
            str(exp["count"]),
            str(len(nvme)),
            Verdict.PASS if len(nvme) == int(exp["count"]) else Verdict.FAIL,
            ev,
        )
    for t in nvme:
        s = t["sysfs"]
        comp = _component(t)
        if exp.get("capacity_bytes"):
            rep.add(
                "nvme_capacity",
                comp,
                f"{exp['capacity_bytes']} bytes",
                str(s["capacity_bytes"]),
                Verdict.PASS if s["capacity_bytes"] == int(exp["capacity_bytes"]) else Verdict.FAIL,
                ev,
            )
        if exp.get("pcie_gen"):
            link = f"Gen{s['pcie_gen']} x{s['pcie_width']}"
            ok = s["pcie_gen"] == int(exp["pcie_gen"]) and s["pcie_width"] == int(
                exp.get("pcie_width", s["pcie_width"])
            )
            rep.add(
                "nvme_link",
                comp,
                f"Gen{exp['pcie_gen']} x{exp.get('pcie_width')}",
                link,
                Verdict.PASS if ok else Verdict.FAIL,
                ev,
            )
    _spread(rep, ctx, exp)


def _spread(rep: Report, ctx: SuiteContext, exp: Dict[str, Any]) -> None:
    """Sibling drives of one class should perform alike: seq read within spread_pct of the median."""
    perf = rep.measurements.get("fio", {})
    bws = {
        c: p["seq_read"]["bw_bytes_per_s"]
        for c, p in perf.items()
        if c.startswith("nvme:") and "seq_read" in p
    }
    if len(bws) < 2:
        return
    median = sorted(bws.values())[len(bws) // 2]
    limit = float(exp.get("spread_pct", 10))
    for comp, bw in bws.items():
        dev = abs(bw - median) / median * 100 if median else 0.0
        rep.add(
            "nvme_sibling_spread",
            comp,
            f"seq read within {limit:g}% of the median",
            f"{dev:.1f}% off",
            Verdict.FAIL if dev > limit else Verdict.PASS,
            required=False,
        )


def run(ctx: SuiteContext) -> Any:
    rep = Report(SUITE)
    targets = _targets(ctx)
    rep.measurements["targets"] = [{k: v for k, v in t.items() if k != "sysfs"} for t in targets]
    if not targets:
        rep.error = "no NVMe namespaces in /sys/class/nvme and no devices or files in the plan"
        rep.add(
            "nvme_present",
            "nvme",
            f"{ctx.expect('nvme').get('count', 'some')} NVMe drives",
            "none found",
            Verdict.INCONCLUSIVE,
        )
        _expectations(rep, ctx, targets)
        return rep.result()
    for t in targets:
        drive_bytes(rep, t)  # every drive is listed, an untested one with 0 bytes
    watch = HealthWatch()
    lock = threading.Lock()
    # all drives at once: the drives, the PCIe switch and the cooling see full load
    threads = [start_thread(rep, _component(t), _one_target, rep, ctx, t, lock) for t in targets]
    for th in threads:
        th.join()
    _expectations(rep, ctx, targets)
    watch.judge(rep, ctx, ecc_expected=False, edac=False)
    return rep.result()
