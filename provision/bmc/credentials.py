"""Adapter: read a BMC's credentials from where hosts.yaml says they are (env:NAME or file:PATH).

The value is "user:password". Errors name the source, never the secret; the repr hides the password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provision.model.errors import BadInput


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
        path = Path(ref).expanduser()
        try:
            raw = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"bmc.credentials: expected a readable file {path}, got {exc.strerror}") from None
    else:
        raise BadInput(f"bmc.credentials: expected env:NAME or file:PATH, got {kind!r}")
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise BadInput(f"bmc.credentials: expected 'user:password' in {spec}, got a value without both")
    return Credentials(user, password)
