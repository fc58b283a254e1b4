"""Adapter: read a PDU's SNMP secret (the v2c community, a v3 key) from its env:NAME or file:PATH.

Errors name the field and the source, never the value. The files are read bounded and regular-only,
as the BMC's credentials are (provision.model.files).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from provision.model.errors import BadInput
from provision.model.files import KIB, FileRefused, read_regular, size_text

LOG = logging.getLogger(__name__)
MAX_FILE_BYTES = 4 * KIB
_warned: set[Path] = set()


def read_secret(spec: str, field: str) -> str:
    """`field` names where the reference was written (e.g. "pdus[inferno-pdu-circle2-1].snmp.community")."""
    kind, _, ref = spec.partition(":")
    if kind == "env":
        raw = os.environ.get(ref)
        if raw is None:
            raise BadInput(f"{field}: expected environment variable {ref} to be set, got unset")
    elif kind == "file":
        raw = _read_file(Path(ref).expanduser(), field)
    else:
        raise BadInput(f"{field}: expected env:NAME or file:PATH, got {kind!r}")
    value = raw.strip()
    if not value:
        raise BadInput(f"{field}: expected a non-empty secret in {spec}, got an empty value")
    return value


def _read_file(path: Path, field: str) -> str:
    try:
        blob, st = read_regular(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise BadInput(f"{field}: expected a readable file {path}, got {exc.strerror}") from None
    except FileRefused as exc:
        raise BadInput(
            f"{field}: expected a regular file {path} of at most {size_text(MAX_FILE_BYTES)}, got {exc.got}"
        ) from None
    if st.st_mode & 0o044 and path not in _warned:
        _warned.add(path)
        LOG.warning(
            "%s: %s is readable by group or others (mode %04o): chmod 600 it",
            field,
            path,
            st.st_mode & 0o7777,
        )
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{field}: expected UTF-8 text in {path}, got other bytes") from None
