"""The report's power supplies and every part's health, as the BMC stated them before the OS and,
where it was read again, after the burn-in: a part that got worse under load is marked and listed
first, so a person sees it without reading every row.

Pure (HTML text from the acceptance record; html.py places it in the inventory section).
"""

from __future__ import annotations

from html import escape
from typing import Any

from provision.acceptance.report.diff import severity

_BADGE = {0: "v-pass", 1: "v-warn", 2: "v-fail"}
_PSU_HEADERS = ["PSU", "Location", "Model", "Serial", "Firmware", "Capacity (W)", "Input (V)", "State"]


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return escape(f"{value:g}" if isinstance(value, float) else str(value))


def _status(status: dict[str, Any] | None) -> str:
    """A badge for Health (HealthRollup where the part states none), then what else the BMC said."""
    if status is None:
        return "<span class=muted>not read</span>"
    word = status.get("health") or status.get("rollup")
    badge = (
        f'<span class="v {_BADGE[severity(status)]}">{escape(word)}</span>'
        if word
        else "<span class=muted>no health stated</span>"
    )
    extra = [f"rollup {status['rollup']}"] if status.get("rollup") not in (None, word) else []
    if status.get("state") not in (None, "Enabled"):
        extra.append(str(status["state"]))
    return badge + "".join(f" <span class=muted>{escape(e)}</span>" for e in extra)


def _row(cells: list[str], worse: bool, bad: bool, key: str) -> str:
    attrs = f' data-part="{escape(key)}"' + (' data-change="worse"' if worse else "")
    cls = " class=bad" if worse or bad else ""
    return f"<tr{cls}{attrs}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _table(headers: list[str], rows: list[str], ident: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table id="{ident}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _psus(pre: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """One row per PSU slot: the latest read's model, serial and capacity; health before and after."""
    before = {p["name"]: p for p in (pre or {}).get("psus", [])}
    later = {p["name"]: p for p in (after or {}).get("psus", [])}
    if not before and not later:
        return "<h3>Power supplies</h3><p class=muted>The BMC listed no power supplies.</p>"
    both = after is not None and pre is not None
    heads = _PSU_HEADERS + (["Health before the burn-in", "Health after the burn-in"] if both else ["Health"])
    rows = []
    for slot in sorted(set(before) | set(later)):
        p = later.get(slot) or before[slot]
        cells = [
            _text(slot),
            _text(p.get("location")),
            _text(p.get("model")),
            f"<span class=mono>{_text(p.get('serial'))}</span>",
            _text(p.get("firmware")),
            _text(p.get("capacity_w")),
            _text(p.get("input_voltage_v")),
            _text(p.get("state")),
        ]
        a, b = before.get(slot), later.get(slot) if after is not None else None
        cells += [_status(a), _status(b)] if both else [_status(p)]
        worse = both and severity(b) > severity(a)
        rows.append(_row(cells, worse, severity(b if after is not None else a) > 0, f"psu:{slot}"))
    return "<h3>Power supplies</h3>" + _table(heads, rows, "psus")


def _health(pre: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """Every part's Status; those not well or that changed in a table of their own, all in details."""
    before = {h["part"]: h for h in (pre or {}).get("health", [])}
    later = {h["part"]: h for h in (after or {}).get("health", [])}
    parts = sorted(set(before) | set(later))
    title = '<h3 id="health">Parts\' health (BMC)</h3>'
    if not parts:
        return title + "<p class=muted>The BMC stated no part's health: it is unknown, not good.</p>"
    both = after is not None and pre is not None
    heads = ["Part", "Location"]
    heads += ["Before the burn-in", "After the burn-in"] if both else ["Health"]
    heads.append("BMC says")

    def row(part: str) -> tuple[str, bool, bool]:
        a, b = before.get(part), later.get(part)
        latest = b if after is not None else a
        worse = both and severity(b) > severity(a)
        cells = [f"<span class=mono>{escape(part)}</span>", _text((latest or a or {}).get("location"))]
        cells += [_status(a), _status(b)] if both else [_status(latest)]
        cells.append(_text((latest or {}).get("message") or (a or {}).get("message")))
        changed = (
            both
            and a is not None
            and b is not None
            and any(a.get(k) != b.get(k) for k in ("state", "health", "rollup"))
        )
        notable = worse or changed or severity(latest) > 0
        return _row(cells, worse, severity(latest) > 0, part), worse, notable

    rendered = [row(p) for p in parts]
    # Worse first, then the rest of what deserves a look, each group in part order.
    notable = [r for r, w, _ in rendered if w] + [r for r, w, n in rendered if n and not w]
    worse = sum(1 for _, w, _ in rendered if w)
    when = (
        "before and after the burn-in"
        if both
        else "as the BMC stated it" + (" after the burn-in" if after is not None else " before the OS")
    )
    summary = (
        f"<p>{len(parts)} parts read; {len(parts) - len(notable)} OK {when}"
        + (f"; <b>{worse} got worse during the burn-in</b>" if worse else "")
        + (f"; {len(notable) - worse} not OK or changed" if len(notable) > worse else "")
        + ".</p>"
    )
    table = _table(heads, notable, "health-notable") if notable else ""
    everything = _table(heads, [r for r, _, _ in rendered], "health-all")
    return (
        title + summary + table + f"<details><summary>All {len(parts)} parts</summary>{everything}</details>"
    )


def power_and_health(record: dict[str, Any]) -> str:
    """The PSU table and the parts' health, from the BMC's reads (none: said, never left blank)."""
    inv = record["inventory"]
    pre, after = inv.get("pre_os"), inv.get("after")
    if pre is None and after is None:
        return "<p class=muted>No BMC inventory: power supplies and parts' health are unknown.</p>"
    return _psus(pre, after) + _health(pre, after)
