"""The node-exporter textfile for an accepted host: acceptance state, last run, findings by verdict.

Pure. The handoff writes it beside the manifests, for the node-exporter's textfile collector.
"""

from __future__ import annotations

from typing import Any

_STATES = ("accepted", "rejected", "inconclusive", "handed-off")


def textfile_metrics(host: str, state: str, record: dict[str, Any]) -> str:
    """node-exporter textfile collector: acceptance state, last run, findings by verdict."""
    run = record["run"]
    lines = [
        "# HELP inferno_acceptance_state Acceptance state of the host: 1 for the current state.",
        "# TYPE inferno_acceptance_state gauge",
        *(f'inferno_acceptance_state{{host="{host}",state="{s}"}} {int(s == state)}' for s in _STATES),
        "# HELP inferno_acceptance_last_run_timestamp_seconds When the last acceptance run ended.",
        "# TYPE inferno_acceptance_last_run_timestamp_seconds gauge",
        f'inferno_acceptance_last_run_timestamp_seconds{{host="{host}",run_id="{run["run_id"]}"}} '
        f"{run['ended_at'] or run['started_at']}",
        "# HELP inferno_acceptance_findings Findings of the last acceptance run, by verdict.",
        "# TYPE inferno_acceptance_findings gauge",
        *(
            f'inferno_acceptance_findings{{host="{host}",verdict="{v}"}} {n}'
            for v, n in record["counts"].items()
        ),
    ]
    return "\n".join(lines) + "\n"
