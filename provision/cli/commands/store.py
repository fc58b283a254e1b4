"""`provision store migrate --from sqlite:STATE_DIR --to postgresql://...`: move a SQLite state store
into an empty PostgreSQL one (several controllers then share it), verified by row counts and digests
per table and every document's sha256 (provision.store.transfer). The URL shown never holds a
password: one written in it is refused (provision.store.storeurl)."""

from __future__ import annotations

from typing import Any

import click

from provision.cli.app import emit
from provision.store.transfer import migrate_store, sqlite_source


@click.group()
def store() -> None:
    """The state store itself."""


def _human(data: dict[str, Any]) -> str:
    lines = [f"{table}: {t['rows']} row(s), sha256 {t['sha256'][:16]}" for table, t in data["tables"].items()]
    lines.append(f"documents: {data['documents']} file(s), {data['document_bytes']} bytes, digests checked")
    lines.append("verified: the target holds the same rows and documents")
    return "\n".join(lines)


@store.command("migrate")
@click.option("--from", "source", required=True, help="The SQLite store: sqlite:STATE_DIR.")
@click.option(
    "--to",
    "target",
    required=True,
    help="An empty PostgreSQL store: postgresql://USER@HOST/DB?documents=/shared/dir "
    "(password through PGPASSFILE or password=env:NAME).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verification as JSON.")
def migrate(source: str, target: str, as_json: bool) -> None:
    """Copy a SQLite state store into an empty PostgreSQL store and verify the copy."""
    report = migrate_store(sqlite_source(source), target)
    emit(report.to_dict(), as_json, _human)
