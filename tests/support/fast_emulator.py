"""Run the real sushy-emulator (fake driver) with its 1-11 s random power delay pinned to 1 s
(or FAST_EMULATOR_DELAY_S).

The emulator applies a power change at int(now) + randint(1, 11); pinning randint keeps the
transition real (the state still reads the old value at first) but bounded, so tests stay short.
Usage: python -m tests.support.fast_emulator --config FILE
"""

from __future__ import annotations

import os
import random
import sys


def main() -> int:
    # FAST_EMULATOR_DELAY_S: a test that needs a change to stay pending sets it long.
    delay_s = int(os.environ.get("FAST_EMULATOR_DELAY_S", "1"))
    random.randint = lambda a, b: delay_s  # type: ignore[assignment]
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
