"""Adapter: read a BMC's credentials from where hosts.yaml says they are (env:NAME or file:PATH).

The value is "user:password". Errors name the source, never the secret; the repr hides the password.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from provision.model.errors import BadInput
from provision.model.files import KIB, FileRefused, read_regular, size_text

LOG = logging.getLogger(__name__)
MAX_FILE_BYTES = 4 * KIB  # "user:password" is tens of bytes; /dev/zero or a log file is not a secret
_warned: set[Path] = set()  # one warning per file and process, not one per BMC call


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # the password must never reach a log or a traceback
        return f"Credentials(user={self.user!r}, password='***')"

    __str__ = __repr__


def read_credentials(spec: str) -> Credentials:
    """`env:NAME` or `file:PATH` holding "user:password". Errors name the source, never the secret."""
    kind, _, ref = spec.partition(":")
    if kind == "env":
        raw = os.environ.get(ref)
        if raw is None:
            raise BadInput(f"bmc.credentials: expected environment variable {ref} to be set, got unset")
    elif kind == "file":
        raw = _read_file(Path(ref).expanduser())
    else:
        raise BadInput(f"bmc.credentials: expected env:NAME or file:PATH, got {kind!r}")
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise BadInput(f"bmc.credentials: expected 'user:password' in {spec}, got a value without both")
    return Credentials(user, password)


def _read_file(path: Path) -> str:
    try:
        blob, st = read_regular(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise BadInput(f"bmc.credentials: expected a readable file {path}, got {exc.strerror}") from None
    except FileRefused as exc:
        expected = f"a regular file {path} of at most {size_text(MAX_FILE_BYTES)}"
        raise BadInput(f"bmc.credentials: expected {expected}, got {exc.got}") from None
    if st.st_mode & 0o044 and path not in _warned:
        _warned.add(path)
        LOG.warning(
            "bmc.credentials: %s is readable by group or others (mode %04o): chmod 600 it",
            path,
            st.st_mode & 0o7777,
        )
    try:
        return blob.decode("utf-8").strip()
    except UnicodeDecodeError:
        # Never the decoder's message: it quotes the bytes around the fault, that is, the secret.
        raise BadInput(f"bmc.credentials: expected UTF-8 text in {path}, got other bytes") from None
