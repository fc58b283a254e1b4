"""Where the state lives: a state directory (SQLite) or a `postgresql://` URL. Pure: no I/O.

A PostgreSQL store is named by a libpq URL with two query parameters of ours, taken out before the
URL reaches libpq:

- `documents=/shared/dir` (required): the shared directory every controller mounts, where the run
  documents (inventories, results, reports) live; their digests stay in the database.
- `password=env:NAME` (optional): the password is read from the variable NAME.
- `lease_s=N` (optional, default 30): how long a host lease lasts unrenewed (provision.store.lease),
  so how soon another controller takes over the hosts of one that died.

Otherwise the password comes the usual libpq way (PGPASSFILE, ~/.pgpass). A password written in the
URL itself is refused, so no URL that a command prints or logs can carry one. Every other query
parameter (host=/run/postgresql, sslmode=...) is libpq's own and passed through.

`--state` is parsed by click into a Path, which folds `//` into `/` ("postgresql:///db" becomes
"postgresql:/db"); `parse_target` undoes that fold, so the URL survives that path. The fold loses
one thing: "scheme://host" and "scheme:///db" look the same, so a URL must name its database.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from provision.model.errors import BadInput

_SCHEME_RE = re.compile(r"^(postgres(?:ql)?):/*(.*)$", re.DOTALL)
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL store: the URL libpq gets (no password), the shared documents directory and,
    where given, the variable that holds the password."""

    conninfo: str
    documents_dir: Path
    password_env: str | None = None
    lease_s: float = 30.0

    def password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise BadInput(
                f"state URL password=env:{self.password_env}: expected the variable to be set, got it unset"
            )
        return value

    def display(self) -> str:
        """The URL to show people: it never holds a password (one in the URL is refused)."""
        return self.conninfo


def is_postgres(target: str | os.PathLike[str]) -> bool:
    return _SCHEME_RE.match(os.fspath(target)) is not None


def _unfold(text: str) -> str:
    """Rebuild the URL from its text, whether click's Path folded its `//` or not."""
    m = _SCHEME_RE.match(text)
    if m is None:
        raise BadInput(f"state: expected a postgresql:// URL, got {text.split('?')[0]!r}")
    scheme, rest = m.group(1), m.group(2)
    before, sep, query = rest.partition("?")
    if text.startswith(f"{scheme}:///"):  # unfolded, no host: scheme:///db
        return f"{scheme}:///{rest}"
    if text.startswith(f"{scheme}://"):
        return f"{scheme}://{rest}"
    # Folded: "netloc/db" had two slashes before it, "db" alone had three.
    return f"{scheme}://{rest}" if "/" in before else f"{scheme}:///{before}{sep}{query}"


def parse_target(target: str | os.PathLike[str]) -> PgTarget:
    url = _unfold(os.fspath(target))
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}/{parts.path.lstrip('/')}"
    if parts.password is not None:
        raise BadInput(
            f"state {shown}: expected the password through PGPASSFILE or password=env:NAME, "
            "got one written in the URL"
        )
    if not parts.path.strip("/"):
        raise BadInput(f"state {shown}: expected a database name in the URL, got none")
    documents: str | None = None
    password_env: str | None = None
    lease_s = 30.0
    passed: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "documents":
            documents = value
        elif key == "password":
            m = _ENV_RE.match(value)
            if m is None:
                raise BadInput(
                    f"state {shown}: password: expected env:NAME (or PGPASSFILE), got a literal password"
                )
            password_env = m.group(1)
        elif key == "lease_s":
            try:
                lease_s = float(value)
            except ValueError:
                lease_s = -1.0
            if not lease_s > 0:
                raise BadInput(f"state {shown}: lease_s: expected a number of seconds > 0, got {value!r}")
        else:
            passed.append((key, value))
    if not documents:
        raise BadInput(
            f"state {shown}: expected documents=/shared/dir in the URL (where run documents live), got none"
        )
    if not Path(documents).is_absolute():
        raise BadInput(f"state {shown}: documents: expected an absolute path, got {documents!r}")
    # Not urlunsplit: with no host it writes "postgresql:/db", which libpq does not parse.
    query = urlencode(passed)
    conninfo = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")
    return PgTarget(conninfo, Path(documents), password_env, lease_s)
