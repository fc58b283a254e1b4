"""`provision lint`: check profiles and inventory against the Inferno taxonomy and the hardware.

Exit 0 with warnings alone, 2 when any finding is an error (or a file cannot be loaded at all).
"""

from __future__ import annotations

from typing import Any

import click

from provision.cli.app import App, emit
from provision.lint.catalog import counts, lint_catalog
from provision.model.errors import BadInput


def _human(data: dict[str, Any]) -> str:
    lines = [f["text"] for f in data["findings"]]
    c = data["counts"]
    lines.append(
        f"{data['profiles']} profiles, {data['hosts']} hosts: "
        f"{c['error']} errors, {c['warning']} warnings, {c['info']} notes"
    )
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def lint(app: App, as_json: bool) -> None:
    """Check profiles and inventory against the Inferno taxonomy and the hardware's limits."""
    catalog = app.catalog
    findings = lint_catalog(catalog)
    tally = counts(findings)
    emit(
        {
            "directory": str(catalog.directory),
            "profiles": len(catalog.profiles),
            "hosts": len(catalog.hosts),
            "counts": tally,
            "findings": [{**f.to_dict(), "text": f.line_text()} for f in findings],
        },
        as_json,
        _human,
    )
    if tally["error"]:
        n = tally["error"]
        raise BadInput(f"lint: {n} error{'s' if n != 1 else ''} in {catalog.directory} (see above)")
