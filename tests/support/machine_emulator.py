"""The test BMC of a loopback flow host that is this machine (tests.support.machine_profile): the real
sushy-emulator with its fake driver (tests.support.fast_emulator), which keeps power and boot state
but implements no Processors. Here it serves the processors the agent's inventory of this machine
found, one per socket, in the shape the emulator's libvirt driver gives them (its processor.json
template), so the BMC's view of the CPUs can be held against the OS's as on a real server.

Usage: python -m tests.support.machine_emulator --processors FILE --config FILE --fake
FILE: [{"id": "CPU0", "socket": "CPU 0", "model": ..., "vendor": ..., "cores": N, "threads": N}]
"""

from __future__ import annotations

import json
import sys
from typing import Any


def processors_of(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent inventory's CPUs (one per socket) as the emulator's processor dicts."""
    return [
        {
            "id": f"CPU{i}",
            "socket": f"CPU {i}",
            "model": c.get("model") or "N/A",
            "vendor": c.get("vendor") or "N/A",
            "cores": c.get("cores") or 1,
            "threads": c.get("threads") or 1,
        }
        for i, c in enumerate(inventory.get("cpus") or [])
    ]


def main() -> int:
    argv = sys.argv[1:]
    i = argv.index("--processors")
    with open(argv[i + 1]) as f:
        processors = json.load(f)
    del argv[i : i + 2]
    sys.argv = [sys.argv[0], *argv]
    from sushy_tools.emulator.resources.systems import fakedriver  # type: ignore[import-untyped]

    def get_processors(self: Any, identity: str) -> list[dict[str, Any]]:
        self._get(identity)  # NotFound for a system the emulator does not have
        return [dict(p) for p in processors]

    fakedriver.FakeDriver.get_processors = get_processors
    from tests.support.fast_emulator import main as fast_main

    return fast_main()


if __name__ == "__main__":
    sys.exit(main())
