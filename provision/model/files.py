"""Adapter: the files a person names, read bounded; the files that hold a secret, written privately.

Reading: only a regular file, and at most `limit` bytes of it. A FIFO would block the reader forever and
a device (`/dev/zero`) never ends, so the file is opened without blocking and checked with fstat (the
very file that is read, not a name that could be swapped between a check and the open).

Writing a token or a secret: a new 0600 file beside the target, fsynced, renamed over it. An existing
file's mode is never inherited (rename leaves no 0644 file holding a secret), and a symbolic link or
any other non-regular file at the target is refused: it is neither followed (the secret would land
wherever it points) nor replaced (it is something the operator set up on purpose, or /dev/stdout).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
# The most a YAML or JSON file a person names may hold (the largest shipped profile is ~8 KiB): a
# bigger one costs seconds and gigabytes to load, and is no profile, inventory or plan.
MAX_INPUT_BYTES = 1 * MIB


class FileRefused(Exception):
    """The file is not one we read or write: `got` says what it is instead, never what it holds."""

    def __init__(self, got: str) -> None:
        super().__init__(got)
        self.got = got


def size_text(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n // KIB} KiB" if n % KIB == 0 else f"{n} bytes"


def kind_of(mode: int) -> str:
    kinds = [
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `path` (at most `limit`), and its stat.

    Raises OSError when it cannot be opened, FileRefused when it is not a regular file or too big.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(kind_of(st.st_mode))
        if st.st_size > limit:
            raise FileRefused(f"{st.st_size} bytes")
        chunks: list[bytes] = []
        left = limit + 1  # one byte more tells a file that grew past the limit since fstat
        while left > 0:
            chunk = os.read(fd, min(left, 64 * KIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        blob = b"".join(chunks)
        if len(blob) > limit:
            raise FileRefused(f"more than {size_text(limit)}")
        return blob, st
    finally:
        os.close(fd)


def check_regular(path: Path) -> None:
    """Refuse (FileRefused) a path that exists and is not a regular file, for files a library reads."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the reader says what is missing or unreadable, in its own words
    if not stat.S_ISREG(mode):
        raise FileRefused(kind_of(mode))


def write_private(path: Path, blob: bytes) -> None:
    """Replace `path` with `blob`, mode 0600: readers see the old file or the new one, whole.

    Raises FileRefused when something other than a regular file is at `path`, OSError on a write error.
    """
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(f"{kind_of(mode)} (neither followed nor replaced)")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        # rename(2) replaces a directory entry: a symlink put at `path` since the check is replaced, not
        # followed.
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
