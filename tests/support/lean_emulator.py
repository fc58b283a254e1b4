"""sushy-emulator (fake driver) for fleets of emulated BMCs: the power delay pinned to ~1 s, and the
fake driver's state file kept open on one connection.

sushy-tools' PersistentDict opens an SQLite connection per access inside `with sqlite3.connect()`,
which commits but does not close; under a few thousand requests a second (200 systems polled at
once) the emulator runs out of file descriptors (EMFILE, seen with 200 hosts here). Opening and
closing one per access fixed that but cost most of the emulator's CPU (a System GET reads the
state ten times: ~40% of its samples were in connect and the WAL pragma). One connection per state
file, used by one request thread at a time and committed per access, keeps the emulator's behaviour
and its persistence: the installer stand-in (tests/support/fleet_installer.py) reads the same file
from another process and sees every change once its access returns.
Usage: python -m tests.support.lean_emulator --config FILE --fake
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import sys
import threading
from collections.abc import Iterator
from typing import Any


def main() -> int:
    random.randint = lambda a, b: 1
    from sushy_tools.emulator import memoize  # type: ignore[import-untyped]

    lock = threading.Lock()
    open_dbs: dict[str, sqlite3.Connection] = {}

    @contextlib.contextmanager
    def connection(self: Any) -> Iterator[sqlite3.Cursor]:
        if not self._dbpath:
            raise TypeError("Dict is not yet persistent")
        with lock:  # one connection per state file for the process, one access at a time
            db = open_dbs.get(self._dbpath)
            if db is None:
                db = open_dbs[self._dbpath] = sqlite3.connect(self._dbpath, check_same_thread=False)
                db.execute("pragma journal_mode=wal")
                db.execute("pragma synchronous=normal")
            with db:  # a transaction per access, committed at once: other processes read the file
                yield db.cursor()

    memoize.PersistentDict.connection = connection
    from sushy_tools.emulator.main import main as emulator_main  # type: ignore[import-untyped]

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
