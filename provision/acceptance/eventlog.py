"""The BMC event log as findings: what the host's SEL gained between the mark taken before the burn-in
and the read after it. Pure: the flow hands in the run's `eventlog.json` document.

A Critical entry fails the run (its message, timestamp and entry id are the evidence), a Warning
warns, and a log that could not be read is one inconclusive finding. That one is optional: many BMCs
(and every emulator) expose no SEL, and its absence says nothing about the hardware.
"""

from __future__ import annotations

from typing import Any

from burnin.schema import Finding, Verdict
from provision.acceptance.validation.common import finding

EVENT_LOG_FILE = "eventlog.json"
CHECK = "bmc_event_log"
COMPONENT = "bmc:event-log"
EXPECTED = "no Critical or Warning entry in the BMC event log during the burn-in"
VERDICTS = {"critical": Verdict.FAIL, "warning": Verdict.WARN}


def event_log_document(
    mark: dict[str, Any], entries: list[dict[str, Any]], error: str | None
) -> dict[str, Any]:
    """What the flow stores after the burn-in: the mark, the entries logged after it, or why not."""
    return {"mark": mark, "entries": entries, "error": error}


def _text(entry: dict[str, Any]) -> str:
    message = " ".join(str(entry.get("message") or "(no message)").split())
    if len(message) > 300:
        message = message[:297] + "..."
    created = entry.get("created") or "time not given"
    return f"{entry.get('severity')}: {message} (entry {entry.get('id')}, created {created})"


def event_log_findings(doc: dict[str, Any] | None) -> list[Finding]:
    """The findings of one run's event-log document; none where the run has no such document."""
    if not isinstance(doc, dict):
        return []
    error = doc.get("error")
    if error:
        return [
            finding(
                CHECK,
                COMPONENT,
                EXPECTED,
                f"the event log could not be read: {error}",
                Verdict.INCONCLUSIVE,
                source="redfish",
                required=False,
            )
        ]
    entries = [e for e in doc.get("entries") or [] if isinstance(e, dict)]
    out: list[Finding] = []
    seen: set[str] = set()
    for entry in entries:
        verdict = VERDICTS.get(str(entry.get("severity") or "").lower())
        if verdict is None:
            continue
        ident = str(entry.get("id"))
        suffix = f"#{len(seen)}" if ident in seen else ""  # ids repeat on BMCs that reuse them
        seen.add(ident)
        out.append(
            finding(
                CHECK,
                f"sel:{ident}",
                EXPECTED,
                _text(entry),
                verdict,
                source="redfish",
                evidence=[str(entry.get("path") or ident)],
                suffix=suffix,
            )
        )
    if not out:
        mark = doc.get("mark") or {}
        since = mark.get("last_created") or mark.get("last_id") or "an empty log"
        out.append(
            finding(
                CHECK,
                COMPONENT,
                EXPECTED,
                f"{len(entries)} new entries since {since}, none Critical or Warning",
                Verdict.PASS,
                source="redfish",
                required=False,
            )
        )
    return out
