"""Adapter: the per-host lock that makes two concurrent runs on one host impossible.

An exclusive, non-blocking flock on state_dir/locks/<host>.lock. The kernel drops it when the holder
exits, however it exits, so a crashed run never leaves a stale lock. The file keeps the holder's pid
and start time only so that the refusal can say who holds it; it is never deleted (deleting a lock
file lets a third process lock a fresh inode while the first still holds the old one).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from provision.model.errors import BadInput, HostLocked, StateError

HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOLDER_READ_TRIES = 40  # x 50 ms: the winner writes its pid just after taking the lock


def lock_path(state_dir: Path, host: str) -> Path:
    if not HOST_NAME_RE.match(host):
        raise BadInput(f"host: expected a host name of letters, digits, '.', '_' and '-', got {host!r}")
    return state_dir / "locks" / f"{host}.lock"


def _holder(fd: int) -> str:
    for _ in range(_HOLDER_READ_TRIES):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        if "pid" in fields and "since" in fields:
            return f"pid {fields['pid']} since {fields['since']}"
        time.sleep(0.05)
    return "another process (it has not written its pid yet)"


@contextmanager
def host_lock(state_dir: Path, host: str) -> Iterator[None]:
    """Hold `host`'s lock for the block, or raise HostLocked at once naming the holder."""
    path = lock_path(state_dir, host)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: opening must not wipe the holder's pid before we know we won.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StateError(f"{path}: could not open the host lock: {exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HostLocked(f"{host} is locked by {_holder(fd)} (another provision run?)") from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\nsince {since}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
