"""What changed between two runs of one host: parts swapped (by serial, WWN, MAC), parts moved
between slots, firmware, performance, and findings whose verdict changed. For the
reinstall-after-swap case: read it before signing the new run.

Pure: compares two acceptance records (provision.acceptance.report.record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burnin.hardware import inventory_from_dict
from provision.acceptance.firmware import firmware_items
from provision.acceptance.golden import flatten

PERF_NOISE_PCT = 1.0  # smaller relative changes are run-to-run noise, not news

# kind -> (inventory list, identity of a part, its slot)
_KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], str | None], Callable[[dict[str, Any]], str]]] = {
    "dimm": ("dimms", lambda d: d.get("serial"), lambda d: str(d.get("locator"))),
    "gpu": ("gpus", lambda g: g.get("serial") or g.get("uuid"), lambda g: f"GPU {g.get('index')}"),
    "drive": ("drives", lambda d: d.get("serial") or d.get("wwn"), lambda d: str(d.get("name"))),
    "nic": ("nics", lambda n: (n.get("mac") or "").lower() or None, lambda n: str(n.get("name"))),
}


def _view(record: dict[str, Any]) -> dict[str, Any]:
    inv = record["inventory"]
    return inv.get("in_os") or inv.get("pre_os") or {}


def _parts(record: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    key_of = _KINDS[kind][1]
    return {k: p for p in _view(record).get(_KINDS[kind][0], []) if (k := key_of(p))}


def _firmware(record: dict[str, Any]) -> dict[str, str]:
    view = _view(record)
    out = {}
    sysi = view.get("system", {})
    for key in ("bios_version", "bmc_version"):
        if sysi.get(key):
            out[f"system {key.removesuffix('_version')}"] = sysi[key]
    for g in view.get("gpus", []):
        if g.get("vbios"):
            out[f"gpu {g.get('serial')} vbios"] = g["vbios"]
        if g.get("driver_version"):
            out["gpu driver"] = g["driver_version"]
    for d in view.get("drives", []):
        if d.get("firmware"):
            out[f"drive {d.get('serial')} firmware"] = d["firmware"]
    for fw in view.get("firmware", []):
        out[f"firmware {fw.get('name')}"] = fw.get("version")
    pre = record["inventory"].get("pre_os")
    for it in firmware_items(inventory_from_dict(pre)) if pre else []:
        # What only the BMC sees (its own, CPLD, PSU, NIC, controllers) counts where the OS view leads.
        key = {"bios": "system bios", "bmc": "system bmc"}.get(it.component) or (
            f"{it.component} {it.serial} {'vbios' if it.component == 'gpu' else 'firmware'}"
            if it.component in ("gpu", "drive") and it.serial
            else f"{it.component} {it.serial or it.name} firmware"
        )
        if it.version and not (pre is view and it.source == "FirmwareInventory"):  # listed above already
            out.setdefault(key, it.version)
    return out


def diff_records(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    parts: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind, (_, _, slot_of) in _KINDS.items():
        pa, pb = _parts(a, kind), _parts(b, kind)
        removed = [{"id": k, "slot": slot_of(pa[k])} for k in sorted(set(pa) - set(pb))]
        added = [{"id": k, "slot": slot_of(pb[k])} for k in sorted(set(pb) - set(pa))]
        moved = [
            {"id": k, "from": slot_of(pa[k]), "to": slot_of(pb[k])}
            for k in sorted(set(pa) & set(pb))
            if slot_of(pa[k]) != slot_of(pb[k])
        ]
        if removed or added or moved:
            parts[kind] = {"removed": removed, "added": added, "moved": moved}
    fa, fb = _firmware(a), _firmware(b)
    firmware = [
        {"item": k, "a": fa.get(k), "b": fb.get(k)}
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]
    ma = {s["suite"]: flatten(s["measurements"]) for s in a["suites"]}
    mb = {s["suite"]: flatten(s["measurements"]) for s in b["suites"]}
    perf = []
    for suite in sorted(set(ma) & set(mb)):
        for key in sorted(set(ma[suite]) & set(mb[suite])):
            va, vb = ma[suite][key], mb[suite][key]
            pct = 100 * (vb - va) / abs(va) if va else (0.0 if vb == va else None)
            if pct is None or abs(pct) >= PERF_NOISE_PCT:
                perf.append({"measurement": f"{suite}.{key}", "a": va, "b": vb, "change_pct": pct})
    fa_v = {f["id"]: f["verdict"] for f in a["findings"]}
    fb_v = {f["id"]: f["verdict"] for f in b["findings"]}
    verdicts = [
        v
        for v in ({"id": k, "a": fa_v.get(k), "b": fb_v.get(k)} for k in sorted(set(fa_v) | set(fb_v)))
        if v["a"] != v["b"] and not (v["a"] in (None, "pass") and v["b"] in (None, "pass"))
    ]
    return {
        "host": b["host"],
        "a": {"run_id": a["run"]["run_id"], "verdict": a["verdict"], "started_at": a["run"]["started_at"]},
        "b": {"run_id": b["run"]["run_id"], "verdict": b["verdict"], "started_at": b["run"]["started_at"]},
        "parts": parts,
        "firmware": firmware,
        "performance": perf,
        "findings": verdicts,
    }


def render_diff(d: dict[str, Any]) -> str:
    lines = [
        f"{d['host']}: {d['a']['run_id']} ({d['a']['verdict']}) -> {d['b']['run_id']} ({d['b']['verdict']})"
    ]
    if not (d["parts"] or d["firmware"] or d["performance"] or d["findings"]):
        lines.append("no change in parts, firmware, performance or verdicts")
    for kind, ch in d["parts"].items():
        for p in ch["removed"]:
            lines.append(f"  {kind} removed  {p['id']} (was in {p['slot']})")
        for p in ch["added"]:
            lines.append(f"  {kind} added    {p['id']} (in {p['slot']})")
        for p in ch["moved"]:
            lines.append(f"  {kind} moved    {p['id']} {p['from']} -> {p['to']}")
    for f in d["firmware"]:
        lines.append(f"  firmware {f['item']}: {f['a'] or '-'} -> {f['b'] or '-'}")
    for p in d["performance"]:
        pct = "n/a" if p["change_pct"] is None else f"{p['change_pct']:+.1f}%"
        lines.append(f"  perf {p['measurement']}: {p['a']:g} -> {p['b']:g} ({pct})")
    for f in d["findings"]:
        lines.append(f"  check {f['id']}: {f['a'] or 'absent'} -> {f['b'] or 'absent'}")
    return "\n".join(lines)
