"""A provision-like process for the lock race: take HOST's lock the way a run does, hold it until told.

argv: STATE_DIR HOST GATE_DIR. Writes GATE_DIR/ready-<pid>, waits for GATE_DIR/go, then takes the
lock. The winner writes GATE_DIR/won-<pid> and holds until GATE_DIR/release exists; the loser prints
the one-line refusal and exits 2, as the CLI does for HostLocked.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from provision.model.errors import HostLocked
from provision.store.state import StateStore

WAIT_S = 60.0


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {path}")
        time.sleep(0.01)


def main() -> None:
    state_dir, host, gate = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    (gate / f"ready-{os.getpid()}").touch()
    wait_for(gate / "go")
    with StateStore.open(state_dir) as store:
        try:
            with store.host_lock(host):
                (gate / f"won-{os.getpid()}").touch()
                wait_for(gate / "release")
        except HostLocked as exc:
            print(f"provision: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
