"""Moving a store from one engine to the other (`provision store migrate`), verified.

Every row of every table is copied as it is, keys included (run ids, step and event numbers), in
one transaction on the target, and every document file is copied into the target's document
directory after its sha256 is checked against its row. The move is then verified by reading both
stores back: per table the row count and a sha256 over the rows in key order (each row as sorted
JSON), and every document's digest in the target. A target that already holds rows is refused, so
nothing is merged into a store in use. The source is only read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.model.errors import BadInput, StateError
from provision.model.files import FileRefused, write_private
from provision.store.connection import StoreConnection
from provision.store.documents import document_path
from provision.store.state import StateStore
from provision.store.storeurl import is_postgres

# Table -> its key, in the order rows can be inserted (runs before what refers to them).
TABLE_KEYS: dict[str, str] = {
    "hosts": "name",
    "host_history": "id",
    "runs": "id",
    "steps": "id",
    "events": "id",
    "documents": "run_id, name",
    "tokens": "sha256",
}


@dataclass(frozen=True)
class TableDigest:
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class TransferReport:
    source: tuple[TableDigest, ...]
    target: tuple[TableDigest, ...]
    documents: int
    document_bytes: int

    @property
    def verified(self) -> bool:
        return self.source == self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "documents": self.documents,
            "document_bytes": self.document_bytes,
            "tables": {
                s.table: {
                    "rows": s.rows,
                    "sha256": s.sha256,
                    "target_rows": t.rows,
                    "target_sha256": t.sha256,
                }
                for s, t in zip(self.source, self.target, strict=True)
            },
        }


def _as_dict(row: Any) -> dict[str, Any]:
    return dict(row) if isinstance(row, dict) else {k: row[k] for k in row.keys()}  # noqa: SIM118 - a Row iterates values


def _rows(conn: StoreConnection, table: str) -> list[dict[str, Any]]:
    return [_as_dict(r) for r in conn.read(f"SELECT * FROM {table} ORDER BY {TABLE_KEYS[table]}")]


def table_digests(conn: StoreConnection) -> tuple[TableDigest, ...]:
    out = []
    for table in TABLE_KEYS:
        h = hashlib.sha256()
        rows = _rows(conn, table)
        for row in rows:
            h.update(json.dumps(row, sort_keys=True).encode() + b"\n")
        out.append(TableDigest(table, len(rows), h.hexdigest()))
    return tuple(out)


def transfer(source: StoreConnection, target: StoreConnection) -> TransferReport:
    """Copy `source` into the empty `target` and verify it (StateError when a digest differs)."""
    held = [d for d in table_digests(target) if d.rows]
    if held:
        raise BadInput(
            "store migrate: expected an empty target store, got rows in "
            + ", ".join(f"{d.table} ({d.rows})" for d in held)
        )
    documents = _rows(source, "documents")
    size = 0
    for doc in documents:
        size += _copy_document(source, target, doc)
    with target.write() as db:
        for table in TABLE_KEYS:
            for row in _rows(source, table):
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
    _after_explicit_ids(target)
    report = TransferReport(table_digests(source), table_digests(target), len(documents), size)
    if not report.verified:
        differ = [s.table for s, t in zip(report.source, report.target, strict=True) if s != t]
        raise StateError(
            f"store migrate: expected the target to match the source, got differences in {differ}"
        )
    return report


def _copy_document(source: StoreConnection, target: StoreConnection, doc: dict[str, Any]) -> int:
    src = document_path(source, doc["run_id"], doc["name"])
    dst = document_path(target, doc["run_id"], doc["name"])
    try:
        blob = src.read_bytes()
    except OSError as exc:
        raise StateError(f"{src}: expected the stored document, got {exc}") from None
    if hashlib.sha256(blob).hexdigest() != doc["sha256"]:
        raise StateError(f"{src}: expected sha256 {doc['sha256']}, got a file that changed since")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_private(dst, blob)
    except (OSError, FileRefused) as exc:
        raise StateError(f"{dst}: could not write the document: {exc}") from None
    if hashlib.sha256(dst.read_bytes()).hexdigest() != doc["sha256"]:
        raise StateError(f"{dst}: expected sha256 {doc['sha256']} after the copy, got another")
    return len(blob)


def _after_explicit_ids(target: StoreConnection) -> None:
    """Rows were inserted with their own numbers: move each numbering past them, so the next
    step or event gets a fresh one. Only PostgreSQL keeps a separate sequence (SQLite numbers
    from the largest id, or from sqlite_sequence, which its INSERTs already advanced)."""
    from provision.store.pgconnection import PgConnection  # psycopg only where it is used

    if not isinstance(target, PgConnection):
        return
    with target.write() as db:
        for table in ("host_history", "steps", "events"):
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) "
                f"FROM {table} HAVING COUNT(*) > 0"
            )


def sqlite_source(text: str) -> Path:
    """`sqlite:PATH` or a bare PATH: a SQLite state directory."""
    path = text.removeprefix("sqlite:")
    if not path or is_postgres(path):
        raise BadInput(f"--from: expected sqlite:STATE_DIR, got {text.split('?')[0]!r}")
    return Path(path)


def migrate_store(source_dir: Path, target_url: str) -> TransferReport:
    """Copy the SQLite store in `source_dir` into the (empty) PostgreSQL store `target_url`."""
    if not is_postgres(target_url):
        raise BadInput(f"--to: expected a postgresql:// URL, got {target_url.split('?')[0]!r}")
    source = StateStore.open_existing(source_dir)
    if source is None:
        raise BadInput(f"--from {source_dir}: expected a SQLite state store there, got none")
    with source, StateStore.open(target_url) as target:
        return transfer(source._conn, target._conn)  # the store package's own
