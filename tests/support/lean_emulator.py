"""sushy-emulator (fake driver) for fleets of emulated BMCs: the power delay pinned to ~1 s, and the
fake driver's state file opened and closed per access.

sushy-tools' PersistentDict opens an SQLite connection per access inside `with sqlite3.connect()`,
which commits but does not close; under a few thousand requests a second (200 systems polled at
once) the emulator runs out of file descriptors (EMFILE, seen with 200 hosts here). Closing each
connection keeps the emulator's behaviour and its persistence.
Usage: python -m tests.support.lean_emulator --config FILE --fake
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any


def main() -> int:
    random.randint = lambda a, b: 1
    from sushy_tools.emulator import memoize  # type: ignore[import-untyped]

    @contextlib.contextmanager
    def connection(self: Any) -> Iterator[sqlite3.Cursor]:
        if not self._dbpath:
            raise TypeError("Dict is not yet persistent")
        db = sqlite3.connect(self._dbpath)
        try:
            with db:
                db.execute("pragma journal_mode=wal")
                yield db.cursor()
        finally:
            db.close()

    memoize.PersistentDict.connection = connection
    from sushy_tools.emulator.main import main as emulator_main  # type: ignore[import-untyped]

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
