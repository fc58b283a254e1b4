"""What changed between two runs of one host: parts swapped (by serial, WWN, MAC), parts moved
between slots, power supplies (by slot: swapped, added, removed, or changed in model, capacity,
firmware or health), parts whose health the BMC states differently, firmware, performance, and
findings whose verdict changed. For the reinstall-after-swap case: read it before signing the new run.

PSUs and health come from the BMC's last word in each run: its read after the burn-in where there
is one, else its read before the OS (`bmc_view` says which).

Pure: compares two acceptance records (provision.acceptance.report.record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from burnin.hardware import inventory_from_dict
from provision.acceptance.firmware import firmware_items
from provision.acceptance.golden import flatten
from provision.acceptance.inventory_diff import OFFLINE

PERF_NOISE_PCT = 1.0  # smaller relative changes are run-to-run noise, not news
PSU_FIELDS = ("serial", "model", "capacity_w", "firmware", "input_voltage_v", "state", "health")
HEALTH_FIELDS = ("state", "health", "rollup")
_SEVERITY = {"Warning": 1, "Critical": 2}
_VIEW_TEXT = {"after": "after the burn-in", "pre_os": "before the OS", None: "none"}

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


def _bmc_view(record: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The BMC's last word in a run: its read after the burn-in, else before the OS."""
    inv = record["inventory"]
    for key in ("after", "pre_os"):
        if inv.get(key):
            return key, inv[key]
    return None, {}


def _field_changes(a: dict[str, Any], b: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    # A property one side could not see is not a change: the BMC may simply not expose it.
    return [
        {"field": n, "a": a.get(n), "b": b.get(n)}
        for n in names
        if a.get(n) is not None and b.get(n) is not None and a.get(n) != b.get(n)
    ]


def _one_side(seen: dict[str, Any], in_a: bool, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """What a part read on one side only showed there: each field against nothing."""
    return [
        {"field": n, "a": seen[n] if in_a else None, "b": None if in_a else seen[n]}
        for n in names
        if seen.get(n) is not None
    ]


def diff_psus(va: dict[str, Any], vb: dict[str, Any]) -> list[dict[str, Any]]:
    """Power supplies matched by slot: `replaced` (another serial), `changed` (same serial, a
    property differs), `added`, `removed`; every entry with both serials and each field before/after."""
    pa = {p["name"]: p for p in va.get("psus", [])}
    pb = {p["name"]: p for p in vb.get("psus", [])}
    out = []
    for slot in sorted(set(pa) | set(pb)):
        a, b = pa.get(slot), pb.get(slot)
        if a is None or b is None:
            seen: dict[str, Any] = a or b or {}
            kind = "removed" if b is None else "added"
            fields = _one_side(seen, b is None, PSU_FIELDS)
        else:
            fields = _field_changes(a, b, PSU_FIELDS)
            kind = "replaced" if any(f["field"] == "serial" for f in fields) else "changed"
            if not fields:
                continue
        serials = {"a": (a or {}).get("serial"), "b": (b or {}).get("serial")}
        worse = b is not None and severity(b) > severity(a)
        out.append({"slot": slot, "kind": kind, "serial": serials, "fields": fields, "worse": worse})
    return out


def severity(status: dict[str, Any] | None) -> int:
    """0 well (or unstated), 1 Warning, 2 Critical or offline: the worst of Health and HealthRollup."""
    if status is None:
        return 0
    offline = 2 if status.get("state") == OFFLINE else 0
    return max(offline, *(_SEVERITY.get(status.get(k) or "", 0) for k in ("health", "rollup")))


def diff_health(va: dict[str, Any], vb: dict[str, Any]) -> list[dict[str, Any]]:
    """Parts whose Status (State, Health, HealthRollup) the BMC states differently, before/after.
    A part read on one side only is listed where it is not well there; PSUs are in `diff_psus`."""
    psu_slots = {p["name"] for v in (va, vb) for p in v.get("psus", [])}
    ha = {h["part"]: h for h in va.get("health", [])}
    hb = {h["part"]: h for h in vb.get("health", [])}
    out = []
    for part in sorted(set(ha) | set(hb)):
        if part.startswith("psu:") and part.removeprefix("psu:") in psu_slots:
            continue
        a, b = ha.get(part), hb.get(part)
        if a is not None and b is not None:
            fields = [
                f
                for f in _field_changes(a, b, HEALTH_FIELDS)
                if f["field"] != "state" or OFFLINE in (f["a"], f["b"])  # see inventory_diff.OFFLINE
            ]
        elif severity(a or b):
            seen = a or b or {}
            fields = _one_side(seen, b is None, HEALTH_FIELDS)
        else:
            continue
        if fields:
            out.append(
                {
                    "part": part,
                    "location": (b or a or {}).get("location"),
                    "fields": fields,
                    "worse": severity(b) > severity(a),
                    "message": (b or {}).get("message"),
                }
            )
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
    (view_a, bmc_a), (view_b, bmc_b) = _bmc_view(a), _bmc_view(b)
    return {
        "host": b["host"],
        "a": {"run_id": a["run"]["run_id"], "verdict": a["verdict"], "started_at": a["run"]["started_at"]},
        "b": {"run_id": b["run"]["run_id"], "verdict": b["verdict"], "started_at": b["run"]["started_at"]},
        "parts": parts,
        "bmc_view": {"a": view_a, "b": view_b},
        "psus": diff_psus(bmc_a, bmc_b),
        "health": diff_health(bmc_a, bmc_b),
        "firmware": firmware,
        "performance": perf,
        "findings": verdicts,
    }


def render_diff(d: dict[str, Any]) -> str:
    lines = [
        f"{d['host']}: {d['a']['run_id']} ({d['a']['verdict']}) -> {d['b']['run_id']} ({d['b']['verdict']})"
    ]
    if not (d["parts"] or d["psus"] or d["health"] or d["firmware"] or d["performance"] or d["findings"]):
        lines.append("no change in parts, firmware, performance or verdicts")
    for kind, ch in d["parts"].items():
        for p in ch["removed"]:
            lines.append(f"  {kind} removed  {p['id']} (was in {p['slot']})")
        for p in ch["added"]:
            lines.append(f"  {kind} added    {p['id']} (in {p['slot']})")
        for p in ch["moved"]:
            lines.append(f"  {kind} moved    {p['id']} {p['from']} -> {p['to']}")
    if d["psus"] or d["health"]:
        view = d["bmc_view"]
        lines.append(f"  (BMC read: A {_VIEW_TEXT[view['a']]}, B {_VIEW_TEXT[view['b']]})")
    for p in d["psus"]:
        if p["kind"] in ("added", "removed"):
            side = "a" if p["kind"] == "removed" else "b"
            seen = ", ".join(f"{f['field']} {_value(f[side])}" for f in p["fields"])
            lines.append(f"  psu {p['slot']} {p['kind']} ({'was ' if side == 'a' else ''}{seen})")
        else:
            worse = " [worse]" if p["worse"] else ""
            lines.append(f"  psu {p['slot']} {p['kind']}: {_fields_text(p['fields'])}{worse}")
    for h in d["health"]:
        where = f" ({h['location']})" if h["location"] else ""
        said = f"; BMC says: {h['message']}" if h["message"] else ""
        worse = " [worse]" if h["worse"] else ""
        lines.append(f"  health {h['part']}{where}: {_fields_text(h['fields'])}{said}{worse}")
    for f in d["firmware"]:
        lines.append(f"  firmware {f['item']}: {f['a'] or '-'} -> {f['b'] or '-'}")
    for p in d["performance"]:
        pct = "n/a" if p["change_pct"] is None else f"{p['change_pct']:+.1f}%"
        lines.append(f"  perf {p['measurement']}: {p['a']:g} -> {p['b']:g} ({pct})")
    for f in d["findings"]:
        lines.append(f"  check {f['id']}: {f['a'] or 'absent'} -> {f['b'] or 'absent'}")
    return "\n".join(lines)


def _fields_text(fields: list[dict[str, Any]]) -> str:
    return "; ".join(f"{f['field']} {_value(f['a'])} -> {_value(f['b'])}" for f in fields)


def _value(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
