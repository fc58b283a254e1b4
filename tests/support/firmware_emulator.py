"""sushy-emulator (fake driver) with the firmware versions its libvirt driver keeps: the real
emulator's own UpdateService, `UpdateService.SimpleUpdate` (BIOS target: the System's path) and
Task 42, over the fake driver, whose get_versions/set_versions are left unimplemented.

As in the libvirt driver, versions start at `BiosVersion: 1.0.0` and live with the system (here in
a JSON file, FIRMWARE_EMULATOR_STATE); SimpleUpdate does not fetch the image: it bumps the
BiosVersion's second number (1.0.0 -> 1.1.0) and answers 204 with Task 42 (Completed).

Usage: python -m tests.support.firmware_emulator --config FILE --fake
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.bmcrig import Emulator, FakeSystem, extended_emulator

DEFAULT_VERSIONS = {"BiosVersion": "1.0.0"}  # the libvirt driver's default


@contextmanager
def firmware_emulator(work: Path, system: FakeSystem) -> Iterator[Emulator]:
    """The emulator with one system whose firmware versions are `work`/versions.json."""
    env = {"FIRMWARE_EMULATOR_STATE": str(work / "versions.json")}
    with extended_emulator("tests.support.firmware_emulator", work, system, env) as emu:
        yield emu


def main() -> int:
    random.randint = lambda a, b: int(os.environ.get("FAST_EMULATOR_DELAY_S", "1"))
    state = Path(os.environ["FIRMWARE_EMULATOR_STATE"])

    from sushy_tools.emulator.resources.systems import fakedriver  # type: ignore[import-untyped]

    def load() -> dict[str, Any]:
        data: dict[str, Any] = json.loads(state.read_text()) if state.exists() else {}
        return data

    def get_versions(self: Any, identity: str) -> dict[str, Any]:
        return {**DEFAULT_VERSIONS, **load().get(self.uuid(identity), {})}

    def set_versions(self: Any, identity: str, versions: dict[str, Any]) -> None:
        data = load()
        data.setdefault(self.uuid(identity), {}).update(versions)
        state.write_text(json.dumps(data))

    fakedriver.FakeDriver.get_versions = get_versions
    fakedriver.FakeDriver.set_versions = set_versions
    from sushy_tools.emulator.main import main as emulator_main  # type: ignore[import-untyped]

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
