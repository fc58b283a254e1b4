"""Documents in the state store: what a run collected (inventories, results, reports).

Each is a file under state_dir/runs/<run_id>/<name>, with its sha256 and size in the database so a
file changed behind the store's back is refused on read. The file is written (atomically) before its
row, and both before the step that collected it is marked, so nothing collected is lost when a step
fails. Names are checked because they become file names.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from provision.model.errors import BadInput, NotFound, StateError
from provision.model.files import FileRefused, write_private
from provision.store.connection import StoreConnection, now
from provision.store.lifecycle import DocumentRef, ts
from provision.store.runs import get_run

DOCUMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def document_path(conn: StoreConnection, run_id: str, name: str) -> Path:
    if not DOCUMENT_NAME_RE.match(name) or ".." in name:
        raise BadInput(f"document name: expected letters, digits, '.', '_' and '-', got {name!r}")
    return conn.state_dir / "runs" / run_id / name


def put_document(conn: StoreConnection, run_id: str, name: str, data: dict[str, Any] | bytes) -> DocumentRef:
    get_run(conn, run_id)
    path = document_path(conn, run_id, name)
    blob = data if isinstance(data, bytes) else (json.dumps(data, indent=2, default=str) + "\n").encode()
    digest = hashlib.sha256(blob).hexdigest()
    _write_atomically(path, blob)
    created = now()
    with conn.write() as db:
        db.execute(
            "INSERT INTO documents (run_id, name, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id, name) DO UPDATE SET sha256 = excluded.sha256, "
            "size_bytes = excluded.size_bytes, created_at = excluded.created_at",
            (run_id, name, digest, len(blob), ts(created)),
        )
    return DocumentRef(run_id, name, path, digest, len(blob), created)


def documents(conn: StoreConnection, run_id: str) -> list[DocumentRef]:
    rows = conn.read("SELECT * FROM documents WHERE run_id = ? ORDER BY created_at, name", (run_id,))
    return [
        DocumentRef(
            run_id=r["run_id"],
            name=r["name"],
            path=document_path(conn, run_id, r["name"]),
            sha256=r["sha256"],
            size_bytes=r["size_bytes"],
            created_at=datetime.fromisoformat(r["created_at"]),
        )
        for r in rows
    ]


def get_document(conn: StoreConnection, run_id: str, name: str) -> bytes:
    path = document_path(conn, run_id, name)
    rows = conn.read("SELECT sha256 FROM documents WHERE run_id = ? AND name = ?", (run_id, name))
    if not rows:
        raise NotFound(f"document: expected {name!r} in run {run_id}, got none")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: expected the stored document, got {exc}") from None
    if hashlib.sha256(blob).hexdigest() != rows[0]["sha256"]:
        raise StateError(f"{path}: expected sha256 {rows[0]['sha256']}, got a file that changed since")
    return blob


def _write_atomically(path: Path, blob: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, rename: readers see the old or the new, whole.

    Mode 0600: a run's documents are the operator's (BMC answers, inventories, serials, logs), and
    whatever a BMC or a host said in them is read back by this user only.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, blob)
    except (OSError, FileRefused) as exc:
        raise StateError(f"{path}: could not write the document: {exc}") from None
