"""Run the real sushy-emulator (fake driver) with its 1-11 s random power delay pinned to 1 s.

The emulator applies a power change at int(now) + randint(1, 11); pinning randint keeps the
transition real (the state still reads the old value at first) but bounded, so tests stay short.
Usage: python -m tests.support.fast_emulator --config FILE
"""

from __future__ import annotations

import random
import sys


def main() -> int:
    random.randint = lambda a, b: 1  # type: ignore[assignment]
    # The fake driver leaves HttpBootUri unimplemented (the libvirt driver stores it); store it here
    # so UEFI HTTP boot runs through the emulator's real PATCH path (download, attach, record).
    from sushy_tools.emulator.resources.systems import fakedriver

    uris: dict[str, str] = {}
    fakedriver.FakeDriver.set_http_boot_uri = lambda self, uri: uris.__setitem__("uri", uri)
    fakedriver.FakeDriver.get_http_boot_uri = lambda self, identity: uris.get("uri")
    from sushy_tools.emulator.main import main as emulator_main

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
