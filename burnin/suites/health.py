"""Drive health before and after a suite: `smartctl -a -j` (exit-status bits, overall status, SATA
attributes) and, for NVMe, `nvme smart-log -o json` (critical warning bits, media errors, spare,
wear, temperatures converted from Kelvin). Judged from the parsed data, never the exit code alone.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from burnin.context import SuiteContext
from burnin.parse_tools import critical_warning_bits, parse_nvme_smart_log, parse_smartctl
from burnin.schema import Verdict
from burnin.suites.common import Report

# SATA attributes whose raw value must be 0 on a new drive: reallocated, uncorrectable, pending,
# offline-uncorrectable; 199 (UDMA CRC, a cable/backplane problem) must not grow during the run.
ATA_ZERO = {
    5: "Reallocated_Sector_Ct",
    187: "Reported_Uncorrect",
    197: "Current_Pending_Sector",
    198: "Offline_Uncorrectable",
}
ATA_NO_GROWTH = {199: "UDMA_CRC_Error_Count"}


def read_health(rep: Report, ctx: SuiteContext, dev: str, tag: str, nvme: bool) -> Dict[str, Any]:
    """One snapshot; keys: smartctl / nvme (parsed or None), errors (why not), evidence ids."""
    name = dev.rsplit("/", 1)[-1]
    out: Dict[str, Any] = {"smartctl": None, "nvme": None, "errors": [], "evidence": []}
    r = rep.keep(ctx.run_tool(f"{rep.suite}.smartctl.{name}.{tag}", ["smartctl", "-a", "-j", dev], 120))
    out["evidence"].append(r.evidence.id)
    why = rep.cannot_run(r)
    if why:
        out["errors"].append(f"smartctl: {why}")
    else:
        try:
            out["smartctl"] = parse_smartctl(r.stdout)
        except ValueError as exc:
            out["errors"].append(str(exc))
    if nvme:
        r = rep.keep(
            ctx.run_tool(f"{rep.suite}.smart_log.{name}.{tag}", ["nvme", "smart-log", "-o", "json", dev], 60)
        )
        out["evidence"].append(r.evidence.id)
        why = rep.cannot_run(r) or (None if r.evidence.exit_code == 0 else f"exit {r.evidence.exit_code}")
        if why:
            out["errors"].append(f"nvme smart-log: {why}")
        else:
            try:
                out["nvme"] = parse_nvme_smart_log(r.stdout)
            except ValueError as exc:
                out["errors"].append(str(exc))
    return out


def _nvme_log(snap: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    if snap.get("nvme"):
        return dict(snap["nvme"])
    sc = snap.get("smartctl") or {}
    return dict(sc["nvme"]) if sc.get("nvme") else None


def judge_smartctl(rep: Report, component: str, snap: Dict[str, Any], required: bool) -> None:
    sc = snap.get("smartctl")
    ev = snap["evidence"]
    if sc is None or not sc["readable"]:
        why = "; ".join(snap["errors"]) or "; ".join((sc or {}).get("messages", [])) or "no SMART data"
        if sc is not None:
            why = f"exit status {sc['exit_status']} ({', '.join(sc['bits'])}): {why}"
        rep.add(
            "smart_status", component, "SMART readable and passed", why, Verdict.INCONCLUSIVE, ev, required
        )
        return
    status = sc["exit_status"]
    failing = status & ((1 << 3) | (1 << 4))
    history = status & ((1 << 5) | (1 << 6) | (1 << 7))
    verdict = Verdict.FAIL if failing or sc.get("passed") is False else Verdict.PASS
    observed = (
        f"exit status {status}"
        + (f" ({', '.join(sc['bits'])})" if sc["bits"] else "")
        + f", passed={sc.get('passed')}"
    )
    rep.add(
        "smart_status", component, "SMART passed, exit-status bits 3-4 clear", observed, verdict, ev, required
    )
    if history:
        rep.add(
            "smart_history",
            component,
            "exit-status bits 5-7 clear",
            observed,
            Verdict.FAIL,
            ev,
            required=False,
        )


def judge_ata(rep: Report, component: str, before: Dict[str, Any], after: Dict[str, Any]) -> None:
    attrs_a = ((after.get("smartctl") or {}).get("ata_attributes")) or {}
    attrs_b = ((before.get("smartctl") or {}).get("ata_attributes")) or {}
    if not attrs_a:
        return
    ev = after["evidence"]
    bad = [f"{ATA_ZERO[i]}={attrs_a[i]['raw']}" for i in ATA_ZERO if i in attrs_a and attrs_a[i]["raw"]]
    rep.add(
        "ata_error_attributes",
        component,
        "raw 0 for ids 5/187/197/198",
        ", ".join(bad) or "all 0",
        Verdict.FAIL if bad else Verdict.PASS,
        ev,
    )
    for i, name in ATA_NO_GROWTH.items():
        if i in attrs_a and i in attrs_b:
            grew = (attrs_a[i]["raw"] or 0) - (attrs_b[i]["raw"] or 0)
            rep.add(
                "ata_crc_errors",
                component,
                f"{name} does not grow",
                f"+{grew}",
                Verdict.FAIL if grew > 0 else Verdict.PASS,
                ev,
            )


def judge_nvme_health(
    rep: Report, component: str, before: Dict[str, Any], after: Dict[str, Any], required: bool
) -> None:
    b, a = _nvme_log(before), _nvme_log(after)
    ev = before["evidence"] + after["evidence"]
    if a is None:
        why = "; ".join(after["errors"]) or "no NVMe health log"
        rep.add("nvme_critical_warning", component, "0", why, Verdict.INCONCLUSIVE, ev, required)
        return
    rep.measurements.setdefault("health", {})[component] = {"before": b, "after": a}
    cw = a.get("critical_warning")
    if cw is None:
        rep.add("nvme_critical_warning", component, "0", "field missing", Verdict.INCONCLUSIVE, ev, required)
    else:
        bits = critical_warning_bits(cw)
        rep.add(
            "nvme_critical_warning",
            component,
            "0",
            f"{cw:#04x}" + (f" ({', '.join(bits)})" if bits else ""),
            Verdict.FAIL if cw else Verdict.PASS,
            ev,
            required,
        )
    media = a.get("media_errors")
    grew = (media or 0) - ((b or {}).get("media_errors") or 0)
    rep.add(
        "nvme_media_errors",
        component,
        "0, and no growth",
        "field missing" if media is None else f"{media} (+{grew} during the suite)",
        Verdict.INCONCLUSIVE if media is None else Verdict.FAIL if media or grew else Verdict.PASS,
        ev,
        required,
    )
    spare, thresh = a.get("available_spare_pct"), a.get("spare_threshold_pct")
    if spare is not None and thresh is not None:
        rep.add(
            "nvme_spare",
            component,
            f">= threshold {thresh}%",
            f"{spare}%",
            Verdict.FAIL if spare < thresh else Verdict.PASS,
            ev,
            required,
        )
    used = a.get("percentage_used")
    if used is not None:
        rep.add(
            "nvme_wear",
            component,
            "<= 2% used (a new drive)",
            f"{used}%",
            Verdict.FAIL if used > 2 else Verdict.PASS,
            ev,
            required=False,
        )
    for key, check in (
        ("warning_temp_time_min", "nvme_warning_temp_time"),
        ("critical_temp_time_min", "nvme_critical_temp_time"),
    ):
        now, was = a.get(key), (b or {}).get(key)
        if now is not None and was is not None:
            rep.add(
                check,
                component,
                "no growth during the suite",
                f"+{now - was} min",
                Verdict.FAIL if now > was else Verdict.PASS,
                ev,
                required,
            )
    if a.get("temperature_c") is not None:
        rep.measurements.setdefault("temperature_c", {})[component] = a["temperature_c"]


def health_errors(snaps: List[Dict[str, Any]]) -> List[str]:
    return [e for s in snaps for e in s["errors"]]
