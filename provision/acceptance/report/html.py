"""The report a person reads and signs: one self-contained HTML file (inline CSS and SVG, no
scripts, no external fetches). Verdict first; then what needs attention with expected vs observed;
the hardware inventory with serials; the phase timeline; plots; environment; the sign-off block.

Pure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from burnin.hardware import inventory_from_dict
from provision.acceptance.firmware import firmware_items
from provision.acceptance.report.parts_html import power_and_health
from provision.acceptance.report.svg import plot, timeline
from provision.acceptance.timeseries import Phase, Telemetry, downsample, kind_of
from provision.model.checks import WAIVED

PLOT_BUCKETS = 400
_SERIAL = re.compile(r"serial ([^)\s]+)")
# No scripts, no fetches: the browser enforces what the file promises (and reports any breach).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
KIND_TITLES = {
    "temperatures": "Temperatures",
    "clocks": "Clocks",
    "power": "Power",
    "throughput": "Throughput",
    "utilization": "Utilization",
}
VERDICT_TEXT = {
    "accepted": "ACCEPTED",
    "rejected": "REJECTED",
    "inconclusive": "INCONCLUSIVE — not accepted",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#fff}
main{max-width:1000px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d9dee7;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 6px}
.verdict{border-radius:8px;padding:16px 20px;margin:12px 0 8px;color:#fff}
.verdict b{font-size:28px;letter-spacing:.5px}.verdict p{margin:6px 0 0}
.accepted{background:#1e7d32}.rejected{background:#b3261e}.inconclusive{background:#8a5a00}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #d9dee7;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.v{font-weight:700;text-transform:uppercase;font-size:11px;padding:1px 6px;border-radius:3px;color:#fff}
.v-fail{background:#b3261e}.v-inconclusive{background:#8a5a00}.v-warn{background:#c77700}.v-pass{background:#1e7d32}
.muted{color:#5b6577}.counts span{margin-right:14px}
svg{max-width:100%;height:auto;display:block}
svg .grid{stroke:#e3e7ee;stroke-width:1}svg .frame{fill:none;stroke:#9aa3b2}
svg text{font:11px system-ui,sans-serif;fill:#445}svg .yl{text-anchor:end}svg .xl{text-anchor:middle}
svg .ph{fill:#6b7385;font-size:10px}svg .tl{text-anchor:start}figure{margin:0}svg .unit{font-weight:600}
.legend{margin:2px 0 14px 60px;font-size:12px}.key{margin-right:12px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.sign td{height:34px}tr.bad td{background:#fdecea}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
@media print{.verdict{print-color-adjust:exact;-webkit-print-color-adjust:exact}details{display:block}}
"""


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def _cell(value: Any) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def _table(
    headers: list[str],
    rows: list[list[Any]],
    mono: Collection[int] = (),
    flagged: frozenset[str] = frozenset(),
) -> str:
    """`flagged`: serials of parts a check failed on; their rows are marked so a person finds the part."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        ("<tr class=bad>" if any(str(c) in flagged for c in r if c is not None) else "<tr>")
        + "".join(f"<td{' class=mono' if i in mono else ''}>{_cell(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _optional(f: dict[str, Any]) -> str:
    """How an optional finding is labelled: a waived one says why (`acceptance.not_required`)."""
    reason = f.get("waived")
    return "optional" if reason is None else f"{WAIVED}{reason}"


def _findings_table(findings: list[dict[str, Any]]) -> str:
    rows = []
    for f in findings:
        evidence = ", ".join(f["evidence"]) or "from " + (f["source"] or "agent")
        rows.append(
            f'<tr><td><span class="v v-{f["verdict"]}">{escape(f["verdict"])}</span>'
            f"{'' if f['required'] else '<br><span class=muted>' + escape(_optional(f)) + '</span>'}</td>"
            f"<td class=mono>{escape(f['check'])}</td><td>{escape(f['component'])}</td>"
            f"<td>{escape(f['expected'])}</td><td>{escape(f['observed'])}</td>"
            f"<td class=mono>{escape(evidence)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("Verdict", "Check", "Component", "Expected", "Observed", "Evidence")
    )
    head = f"<tr>{head}</tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


_SYSTEM_HEADERS = ["Manufacturer", "Model", "Serial", "BIOS", "BMC", "OS", "Kernel"]
_SYSTEM_FIELDS = ("manufacturer", "model", "serial", "bios_version", "bmc_version", "os_name", "kernel")


def _cpu_row(c: dict[str, Any]) -> list[Any]:
    return [c.get("socket"), c.get("model"), c.get("cores"), c.get("threads")]


def _dimm_row(d: dict[str, Any]) -> list[Any]:
    return [
        d.get("locator"),
        d.get("size_mib"),
        d.get("type"),
        d.get("rated_mts"),
        d.get("configured_mts"),
        d.get("part_number"),
        d.get("serial"),
    ]


def _gpu_row(g: dict[str, Any]) -> list[Any]:
    pcie = f"Gen{g.get('pcie_gen_max')} x{g.get('pcie_width_max')}" if g.get("pcie_gen_max") else None
    return [
        g.get("index"),
        g.get("name"),
        g.get("memory_mib"),
        pcie,
        g.get("power_limit_w"),
        g.get("vbios"),
        g.get("serial"),
    ]


def _drive_row(d: dict[str, Any]) -> list[Any]:
    return [
        d.get("name"),
        d.get("protocol"),
        d.get("model"),
        d.get("capacity_bytes"),
        d.get("firmware"),
        d.get("serial"),
        d.get("wwn"),
    ]


def _nic_row(n: dict[str, Any]) -> list[Any]:
    link = None if n.get("link_up") is None else ("up" if n["link_up"] else "down")
    return [n.get("name"), n.get("mac"), n.get("speed_mbps"), link]


@dataclass(frozen=True)
class _Part:
    """One inventory table: the record's key, its headers, one row per item, its monospace columns."""

    key: str
    headers: list[str]
    row: Callable[[dict[str, Any]], list[Any]]
    mono: frozenset[int]
    # Parts with serials mark the rows a check failed on; CPUs carry no serial.
    flags: bool = True


_PARTS = (
    _Part("cpus", ["Socket", "Model", "Cores", "Threads"], _cpu_row, frozenset(), flags=False),
    _Part(
        "dimms",
        ["DIMM", "Size (MiB)", "Type", "Rated MT/s", "Configured MT/s", "Part", "Serial"],
        _dimm_row,
        frozenset({6}),
    ),
    _Part(
        "gpus",
        ["GPU", "Name", "Memory (MiB)", "PCIe", "Power limit (W)", "VBIOS", "Serial"],
        _gpu_row,
        frozenset({6}),
    ),
    _Part(
        "drives",
        ["Drive", "Protocol", "Model", "Capacity (bytes)", "Firmware", "Serial", "WWN"],
        _drive_row,
        frozenset({5, 6}),
    ),
    _Part("nics", ["NIC", "MAC", "Speed (Mb/s)", "Link"], _nic_row, frozenset({1})),
)


def _inventory(inv: dict[str, Any] | None, label: str, flagged: frozenset[str] = frozenset()) -> str:
    if not inv:
        return f"<p class=muted>No {escape(label)} inventory.</p>"
    sysi = inv.get("system", {})
    out = [
        f"<h3>{escape(label)}</h3>",
        _table(_SYSTEM_HEADERS, [[sysi.get(k) for k in _SYSTEM_FIELDS]], {2}),
    ]
    for part in _PARTS:
        if inv.get(part.key):
            rows = [part.row(item) for item in inv[part.key]]
            out.append(_table(part.headers, rows, part.mono, flagged if part.flags else frozenset()))
    if inv.get("gaps"):
        out.append(_table(["Not read", "Why"], [[k, v] for k, v in inv["gaps"].items()]))
    return "".join(out)


def _plots(tel: Telemetry | None, phases: list[Phase]) -> str:
    if tel is None or not tel.samples or tel.start_s is None or tel.end_s is None:
        return "<p class=muted>No telemetry was recorded for this run.</p>"
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(tel.series):
        found = kind_of(name)
        if found is not None:
            groups.setdefault(found, []).append(name)
    order = list(KIND_TITLES)
    out = []
    for (kind, unit), names in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        envelopes = [downsample(tel, n, PLOT_BUCKETS) for n in names]
        title = f"{KIND_TITLES[kind]} ({unit})"
        out.append(f'<figure class="chart" data-kind="{kind}"><h3>{escape(title)}</h3>')
        out.append(plot(title, unit, envelopes, tel.start_s, tel.end_s, phases))
        out.append("</figure>")
    note = (
        f"<p class=muted>{tel.samples} samples over {_dur(tel.end_s - tel.start_s)}; each line is the mean "
        f"of up to {PLOT_BUCKETS} intervals and the band around it spans that interval's minimum to maximum."
        + (f" {tel.bad_lines} unparsable line(s) skipped." if tel.bad_lines else "")
        + "</p>"
    )
    return note + "".join(out)


def record_digest(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _why(record: dict[str, Any]) -> str:
    """The verdict's reason, in one sentence (older records have none: say it from the counts)."""
    if record.get("reason"):
        return str(record["reason"])
    counts, inconclusive = record["counts"], record["required_inconclusive"]
    if record["verdict"] == "accepted":
        return "Nothing failed and every required check has evidence."
    if record["verdict"] == "rejected":
        return f"{counts['fail']} check(s) failed."
    return f"Nothing failed, but {inconclusive} required check(s) have no usable evidence."


def _heading(record: dict[str, Any], title: str) -> list[str]:
    """Title, run line and the verdict banner with its counts."""
    run, verdict, counts = record["run"], record["verdict"], record["counts"]
    return [
        f"<h1>{escape(title)}</h1>",
        f"<p class=muted>Profile <b>{_cell(record['profile'])}</b> · run "
        f"<span class=mono>{escape(run['run_id'])}</span> ({escape(run['kind'])})"
        f" · {_when(run['started_at'])} → {_when(run['ended_at'])} ({_dur(run['duration_s'])})</p>",
        f'<section id="verdict" class="verdict {verdict}"><b>{VERDICT_TEXT[verdict]}</b>'
        f"<p>{escape(_why(record))}</p>"
        f'<p class="counts"><span>{counts["fail"]} failed</span>'
        f"<span>{counts['inconclusive']} inconclusive</span>"
        f"<span>{counts['warn']} warnings</span><span>{counts['pass']} passed</span></p></section>",
    ]


def _attention(attention: list[dict[str, Any]], warnings: list[dict[str, Any]]) -> list[str]:
    out = [
        '<h2 id="attention">Needs attention</h2>',
        _findings_table(attention) if attention else "<p>No failing or inconclusive check.</p>",
    ]
    if warnings:
        out += ["<h3>Warnings</h3>", _findings_table(warnings)]
    return out


def _firmware(inv: dict[str, Any] | None, flagged: frozenset[str]) -> str:
    """Every firmware the BMC reported (else the agent), one row per component."""
    if not inv:
        return ""
    items = firmware_items(inventory_from_dict(inv))
    upd = {True: "yes", False: "no", None: None}
    rows = [[i.component, i.name, i.model, i.version, i.location, i.serial, upd[i.updateable]] for i in items]
    heads = ["Component", "Part", "Model", "Version", "Location", "Serial", "Updateable"]
    return "<h3>Firmware</h3>" + _table(heads, rows, frozenset({3, 5}), flagged)


def _firmware_flags(findings: list[dict[str, Any]]) -> frozenset[str]:
    """Serials of the parts a firmware check did not pass on: their firmware rows are marked."""
    bad = [f for f in findings if f["check"].startswith("firmware_") and f["verdict"] != "pass"]
    return frozenset(m for f in bad for m in _SERIAL.findall(f["component"]))


def _hardware(record: dict[str, Any], flagged: frozenset[str]) -> list[str]:
    pre = record["inventory"]["pre_os"]
    return [
        '<h2 id="inventory">Hardware inventory</h2>',
        _inventory(record["inventory"]["in_os"], "In the OS (burn-in agent)", flagged),
        _firmware(pre or record["inventory"]["in_os"], _firmware_flags(record["findings"])),
        power_and_health(record),
        "<details><summary>Before the OS (BMC, Redfish): what the BMC listed, cross-checked part by part"
        "</summary>" + _inventory(pre, "Before the OS (BMC, Redfish)", flagged) + "</details>",
    ]


def _timeline(record: dict[str, Any], phases: list[Phase]) -> list[str]:
    run = record["run"]
    start = run["started_at"]
    end = run["ended_at"] or (phases[-1].end_s if phases else start)
    results_rows = [[s["suite"], s["verdict"], _dur(s["duration_s"]), s["error"]] for s in record["suites"]]
    return [
        '<h2 id="timeline">Timeline</h2>',
        timeline(phases, start, end) if phases else "<p class=muted>No phases recorded.</p>",
        _table(["Suite", "Verdict", "Duration", "Stopped because"], results_rows),
    ]


def _environment_rows(record: dict[str, Any]) -> list[list[Any]]:
    run = record["run"]
    inos = record["inventory"]["in_os"] or {}
    return [
        ["Generator", record["generator"]],
        ["Agent", run["agent_version"] or "—"],
        ["Result schema", run["result_schema_version"]],
        ["Plan", (run["plan"] or {}).get("name", "—")],
        ["Golden reference", run["golden_run"] or "none (floors are % of theoretical peak)"],
        ["OS", inos.get("system", {}).get("os_name")],
        ["Kernel", inos.get("system", {}).get("kernel")],
        ["GPU driver", next((g.get("driver_version") for g in inos.get("gpus", [])), None)],
        ["Telemetry", f"{record['telemetry']['file'] or '—'} ({record['telemetry']['samples']} samples)"],
    ]


def _environment(record: dict[str, Any]) -> list[str]:
    """Environment, the plan as run, and the evidence files with their digests."""
    plan = record["run"]["plan"] or {}
    suites_rows = [
        [s.get("suite"), s.get("duration_s"), s.get("options") or ""] for s in plan.get("suites", [])
    ]
    raw_rows = [[r["path"], r["size_bytes"], r["sha256"]] for r in record["raw"]]
    ev_rows = [
        [e["id"], " ".join(e["command"]), e["exit_code"], e["artifact"], e["sha256"]]
        for e in record["evidence"]
    ]
    return [
        '<h2 id="environment">Environment</h2>',
        _table(["Item", "Value"], _environment_rows(record)),
        "<h3>Plan</h3>",
        _table(["Suite", "Duration (s)", "Options"], suites_rows),
        "<h3>Evidence</h3>",
        _table(["Id", "Command", "Exit", "Artifact", "SHA-256"], ev_rows, {1, 4}),
        _table(["Raw file", "Bytes", "SHA-256"], raw_rows, {0, 2}) if raw_rows else "",
    ]


def _signoff(record: dict[str, Any]) -> list[str]:
    return [
        '<h2 id="signoff">Sign-off</h2>',
        f"<p>Record digest (SHA-256 of the JSON record): <span class=mono>{record_digest(record)}</span></p>",
        '<table class="sign"><thead><tr><th>Role</th><th>Name</th><th>Decision</th><th>Signature</th>'
        "<th>Date</th>"
        "</tr></thead><tbody>"
        + "".join(
            f"<tr><td>{r}</td><td></td><td></td><td></td><td></td></tr>"
            for r in ("Burn-in operator", "Platform owner", "Asset management")
        )
        + "</tbody></table>",
    ]


def render_html(record: dict[str, Any], telemetry: Telemetry | None) -> str:
    findings = record["findings"]
    attention = [f for f in findings if f["verdict"] in ("fail", "inconclusive")]
    flagged = frozenset(m for f in attention for m in _SERIAL.findall(f["component"]))
    warnings = [f for f in findings if f["verdict"] == "warn"]
    phases = [Phase(p["name"], p["start"], p["end"]) for p in record["phases"]]
    title = f"Burn-in acceptance: {record['host']}"
    body = [
        *_heading(record, title),
        *_attention(attention, warnings),
        *_hardware(record, flagged),
        *_timeline(record, phases),
        '<h2 id="telemetry">Telemetry</h2>',
        _plots(telemetry, phases),
        '<h2 id="checks">All checks</h2>',
        f"<details><summary>{len(findings)} findings</summary>{_findings_table(findings)}</details>",
        *_environment(record),
        *_signoff(record),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)} — {record['verdict']}</title><style>{CSS}</style></head><body><main>"
        + "".join(body)
        + "</main></body></html>\n"
    )
