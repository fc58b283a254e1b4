"""What the top level does with an exception nobody meant to raise (a bug): one line on stderr and
the full traceback in a log file, exit 3 (README: every path has its exit code; a traceback is not one).

The line names the exception's type and the first line of its message; the log holds the traceback
only: neither carries the command line, whose values may be secrets. The log goes under the state
directory (`<state>/logs/crash-<time>.log`, mode 0600) when that directory exists and takes it,
else into a fresh private temporary directory: the crash may be the state directory's own fault.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

MESSAGE_CHARS = 200


def summary(exc: BaseException) -> str:
    """`Type: first line of the message`, cut to a line's length."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _write(directory: Path, body: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = directory / f"crash-{stamp}-{os.getpid()}.log"
    # O_EXCL | O_NOFOLLOW: never through a link planted at the name, never over another log.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(body)
    return path


def write_log(exc: BaseException, state_dir: Path | None) -> Path | None:
    """Write the traceback; return where, or None when no directory at all would take it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("inferno-provision")
    except PackageNotFoundError:
        ours = "unknown"
    body = (
        f"provision {ours}, Python {platform.python_version()}, pid {os.getpid()}, "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n" + "".join(traceback.format_exception(exc))
    )
    if state_dir is not None and state_dir.is_dir():
        try:
            logs = state_dir / "logs"
            logs.mkdir(mode=0o700, exist_ok=True)
            return _write(logs, body)
        except OSError:
            pass  # read-only, full, not ours: the temporary directory below
    try:
        return _write(Path(tempfile.mkdtemp(prefix="provision-crash-")), body)
    except OSError:
        return None


def report(exc: BaseException, state_dir: Path | None) -> None:
    """The one line on stderr for a bug, after its traceback went to a log."""
    where = write_log(exc, state_dir)
    tail = f"; traceback in {where}" if where else "; no traceback written (no writable directory)"
    sys.stderr.write(f"provision: internal error (a bug): {summary(exc)}{tail}\n")
