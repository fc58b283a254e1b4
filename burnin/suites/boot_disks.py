"""Boot disks suite: the disks under the root and boot filesystems (the SATA boot mirror). Read-only
by construction: `fio --readonly` sequential read, SMART (smartctl exit-status bits, SATA error
attributes, link rate), md mirror state. Never written, whatever the plan says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

from burnin.context import SuiteContext
from burnin.fiojob import build_job
from burnin.hostio import read
from burnin.inventory import root_disks
from burnin.parse_tools import parse_fio
from burnin.schema import Verdict
from burnin.suites.common import Report
from burnin.suites.health import judge_ata, judge_nvme_health, judge_smartctl, read_health
from burnin.suites.nvme import fio_job_verdict

SUITE = "boot_disks"


def mirror_state(mdstat: str, disks: List[str]) -> List[Dict[str, str]]:
    """md arrays with a member on one of `disks`: name, level and the [UU] member map."""
    out = []
    lines = mdstat.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(md\w+)\s*:\s*(\w+)\s+(?:\([^)]*\)\s+)?(\w+)\s+(.*)$", line)
        if not m or not any(re.search(rf"\b{re.escape(d)}\w*\[\d+\]", m.group(4)) for d in disks):
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        state = re.search(r"\[([U_]+)\]\s*$", nxt)
        out.append({"array": m.group(1), "level": m.group(3), "members": state.group(1) if state else "?"})
    return out


def mirror_verdict(arrays: List[Dict[str, str]], raid: str) -> Tuple[Verdict, str]:
    """The boot mirror against the profile's level: none, degraded or another level fails; a member
    map that could not be read proves nothing."""
    observed = (
        ", ".join(f"{a['array']} {a['level']} [{a['members']}]" for a in arrays)
        or "no md array on these disks"
    )
    if not arrays or any("_" in a["members"] for a in arrays):
        return Verdict.FAIL, observed
    if any(a["level"] != raid for a in arrays):
        return Verdict.FAIL, observed + f" (not {raid})"
    if any(not re.fullmatch(r"U+", a["members"]) for a in arrays):
        return Verdict.INCONCLUSIVE, observed + " (member map unreadable)"
    return Verdict.PASS, observed


def _read_pass(rep: Report, ctx: SuiteContext, disk: str, runtime_s: float) -> None:
    ev_id = f"boot_disks.fio.{disk}"
    job_rel, out_rel = f"artifacts/{ev_id}.fio", f"artifacts/{ev_id}.json"
    (ctx.run_dir / job_rel).write_text(
        build_job(f"/dev/{disk}", ["seq_read"], runtime_s, {"ioengine": "psync", "direct": True})
    )
    argv = [
        "fio",
        "--readonly",
        "--output-format=json",
        f"--output={ctx.run_dir / out_rel}",
        str(ctx.run_dir / job_rel),
    ]
    r = rep.keep(ctx.run_tool(ev_id, argv, runtime_s + 120, artifact=out_rel))
    why = rep.cannot_run(r)
    if not why:
        try:
            parsed = parse_fio((ctx.run_dir / out_rel).read_text())
        except (OSError, ValueError) as exc:
            why = str(exc)
    if why:
        rep.add(
            "fio_read", f"disk:{disk}", "a read-only pass with no errors", why, Verdict.INCONCLUSIVE, [ev_id]
        )
        return
    job: Dict[str, Any] = (
        parsed["jobs"][0] if parsed["jobs"] else {"error": -1, "read": {"bw_bytes_per_s": 0}}
    )
    rep.measurements.setdefault("seq_read_mb_per_s", {})[disk] = round(job["read"]["bw_bytes_per_s"] / 1e6, 1)
    verdict = fio_job_verdict(r.evidence.exit_code, parsed["jobs"])
    rep.add(
        "fio_read",
        f"disk:{disk}",
        "exit 0, job error 0, bytes read > 0",
        f"exit {r.evidence.exit_code}, err={job['error']}, {job['read'].get('io_bytes', 0)} bytes read",
        verdict,
        [ev_id],
    )


def run(ctx: SuiteContext) -> Any:
    rep = Report(SUITE)
    exp = ctx.expect("boot_disks")
    disks = [Path(d).name for d in ctx.options.get("devices", [])] or root_disks()
    rep.measurements["disks"] = disks
    if exp.get("count") is not None:
        rep.add(
            "boot_disk_count",
            "boot",
            str(exp["count"]),
            f"{len(disks)} ({', '.join(disks)})",
            Verdict.PASS if len(disks) == int(exp["count"]) else Verdict.FAIL,
        )
    if not disks:
        rep.error = "could not find the disks under / and /boot"
        rep.add(
            "boot_disks_found", "boot", "the disks under / and /boot", "none resolved", Verdict.INCONCLUSIVE
        )
        return rep.result()
    runtime = max(1.0, (ctx.duration_s or 5) / len(disks))
    for disk in disks:
        comp = f"disk:{disk}"
        nvme = disk.startswith("nvme")
        before = read_health(rep, ctx, f"/dev/{disk}", "before", nvme=nvme)
        _read_pass(rep, ctx, disk, runtime)
        after = read_health(rep, ctx, f"/dev/{disk}", "after", nvme=nvme)
        judge_smartctl(rep, comp, after, required=True)
        judge_ata(rep, comp, before, after)
        if nvme:
            judge_nvme_health(rep, comp, before, after, required=True)
        link = (after.get("smartctl") or {}).get("link_gbps")
        if exp.get("link_gbps") and link is not None:
            rep.add(
                "sata_link",
                comp,
                f"{exp['link_gbps']} Gb/s",
                f"{link:g} Gb/s",
                Verdict.PASS if link >= float(exp["link_gbps"]) else Verdict.FAIL,
            )
    if exp.get("raid"):
        arrays = mirror_state(read(Path("/proc/mdstat")) or "", disks)
        rep.measurements["md_arrays"] = arrays
        verdict, observed = mirror_verdict(arrays, str(exp["raid"]))
        rep.add("boot_mirror", "boot", f"{exp['raid']} with every member up ([UU])", observed, verdict)
    return rep.result()
