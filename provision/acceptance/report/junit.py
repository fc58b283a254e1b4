"""JUnit XML for CI dashboards: one testcase per finding, grouped in testsuites by source.

Mapping (documented in the README):
- pass -> a passing testcase;
- warn -> a passing testcase whose <system-out> starts with "WARN" (a warning must not turn CI red);
- fail -> <failure type="fail"> with expected vs observed;
- inconclusive, required -> <error type="inconclusive">: the check could not be evaluated and it blocks
  acceptance; dashboards show errors as not-green, which is the honest reading;
- inconclusive, not required -> <skipped>: nothing was proven, and nothing is blocked.

Pure.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from provision.model.checks import WAIVED


def _case(parent: ET.Element, host: str, f: dict[str, Any]) -> tuple[str, ...]:
    case = ET.SubElement(
        parent, "testcase", {"classname": f"{host}.{f['source'] or 'agent'}.{f['check']}", "name": f["id"]}
    )
    text = (
        f"expected: {f['expected']}\nobserved: {f['observed']}\nevidence: {', '.join(f['evidence']) or '-'}"
    )
    verdict = f["verdict"]
    if verdict == "fail":
        el = ET.SubElement(
            case,
            "failure",
            {"type": "fail", "message": f"expected {f['expected']}, observed {f['observed']}"},
        )
        el.text = text
        return ("failures",)
    if verdict == "inconclusive" and f["required"]:
        el = ET.SubElement(
            case, "error", {"type": "inconclusive", "message": f"no usable evidence: {f['observed']}"}
        )
        el.text = text
        return ("errors",)
    if verdict == "inconclusive":
        reason = f.get("waived")
        why = "not required" if reason is None else f"{WAIVED}{reason}"
        ET.SubElement(case, "skipped", {"message": f"inconclusive ({why}): {f['observed']}"})
        return ("skipped",)
    out = ET.SubElement(case, "system-out")
    out.text = ("WARN " if verdict == "warn" else "") + text
    return ()


def render_junit(record: dict[str, Any]) -> str:
    host = record["host"]
    root = ET.Element("testsuites", {"name": f"acceptance {host} {record['run']['run_id']}"})
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in record["findings"]:
        groups.setdefault(f["source"] or "agent", []).append(f)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for source, findings in sorted(groups.items()):
        suite = ET.SubElement(root, "testsuite", {"name": f"{host}.{source}"})
        counts = {"tests": len(findings), "failures": 0, "errors": 0, "skipped": 0}
        for f in findings:
            for key in _case(suite, host, f):
                counts[key] += 1
        for key, n in counts.items():
            suite.set(key, str(n))
            totals[key] += n
    for key, n in totals.items():
        root.set(key, str(n))
    props = ET.Element("properties")
    for name, value in (("verdict", record["verdict"]), ("profile", record["profile"] or "")):
        ET.SubElement(props, "property", {"name": name, "value": value})
    if len(root):
        root[0].insert(0, props)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
