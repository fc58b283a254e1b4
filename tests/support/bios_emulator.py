"""sushy-emulator (fake driver) with the BIOS its libvirt driver has: the real emulator's own Bios,
Bios/Settings, ResetBios and AttributeRegistry routes, templates and registry, over the fake driver.

The fake driver leaves get_bios/set_bios unimplemented (the libvirt driver keeps the attributes in
the domain XML, as strings, seeded with DEFAULT_BIOS_ATTRIBUTES). Here they are kept in a JSON
file (BIOS_EMULATOR_STATE) seeded with the libvirt driver's defaults, and, as a real BIOS does, a
PATCH stays pending until the next power-on (unless BIOS_APPLY_AT=patch, the libvirt driver's way).

Usage: python -m tests.support.bios_emulator --config FILE --fake
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


@contextmanager
def bios_emulator(
    work: Path, system: FakeSystem, apply_at: str = "boot", etags: str = "", stale_patches: int = 0
) -> Iterator[Emulator]:
    """The emulator with one system whose BIOS state is `work`/bios.json; stopped by PID, always.

    `etags` "header" or "odata": Bios/Settings carries an ETag (the `ETag` header, or `@odata.etag` in
    the body), advertises `@Redfish.SettingsApplyTime` (OnReset), and a PATCH without the current
    ETag in `If-Match` is refused (428 without one, 412 with a stale one), as iLO and iDRAC do. The
    first `stale_patches` PATCHes find it changed by another writer (412, and a new ETag)."""
    env = {
        "BIOS_EMULATOR_STATE": str(work / "bios.json"),
        "BIOS_APPLY_AT": apply_at,
        "BIOS_ETAGS": etags,
        "BIOS_STALE_PATCHES": str(stale_patches),
    }
    with extended_emulator("tests.support.bios_emulator", work, system, env) as emu:
        yield emu


def _enforce_etags(app: Any, mode: str, load: Any, save: Any, stale: int) -> None:
    """ETags and If-Match on Bios/Settings, and SettingsApplyTime advertised (see bios_emulator).
    The generation of the settings lives in the state file, as `_etag`: every PATCH taken, and every
    stale PATCH simulated, moves it on. Each PATCH's body is kept as `_last_patch`."""
    import flask

    def settings(path: str) -> bool:
        return path.rstrip("/").endswith("/BIOS/Settings")

    def etag(data: dict[str, Any]) -> str:
        return f'W/"bios-{data.get("_etag", 0)}"'

    @app.before_request  # type: ignore[untyped-decorator]
    def check() -> Any:
        req = flask.request
        if req.method != "PATCH" or not settings(req.path):
            return None
        data = load()
        data["_stale_left"] = data.get("_stale_left", stale)
        given = req.headers.get("If-Match")
        if data["_stale_left"] > 0:  # another writer got there first
            data["_stale_left"] -= 1
            data["_etag"] = data.get("_etag", 0) + 1
            save(data)
            return flask.Response(status=412)
        if given is None:
            return flask.Response(status=428)
        if given != etag(data):
            return flask.Response(status=412)
        data["_etag"] = data.get("_etag", 0) + 1
        data["_last_patch"] = req.get_json(silent=True)
        save(data)
        return None

    @app.after_request  # type: ignore[untyped-decorator]
    def tag(resp: Any) -> Any:
        req = flask.request
        bios = req.path.rstrip("/").endswith("/BIOS")
        if req.method != "GET" or resp.status_code != 200 or not (bios or settings(req.path)):
            return resp
        doc = json.loads(resp.get_data())
        if settings(req.path):
            current = etag(load())
            doc["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
            if mode == "odata":
                doc["@odata.etag"] = current
            else:
                resp.headers["ETag"] = current
        else:
            doc["@Redfish.Settings"]["SupportedApplyTimes"] = ["OnReset"]
        resp.set_data(json.dumps(doc))
        return resp


def main() -> int:
    random.randint = lambda a, b: int(os.environ.get("FAST_EMULATOR_DELAY_S", "1"))
    state_file = Path(os.environ["BIOS_EMULATOR_STATE"])
    at_patch = os.environ.get("BIOS_APPLY_AT") == "patch"

    from sushy_tools.emulator.resources.systems import fakedriver  # type: ignore[import-untyped]
    from sushy_tools.emulator.resources.systems.libvirtdriver import (  # type: ignore[import-untyped]
        LibvirtDriver,
    )

    def load() -> dict[str, Any]:
        if state_file.exists():
            data: dict[str, Any] = json.loads(state_file.read_text())
            return data
        return {}

    def save(data: dict[str, Any]) -> None:
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(state_file)

    def entry(data: dict[str, Any], identity: str) -> dict[str, Any]:
        found: dict[str, Any] = data.setdefault(
            identity, {"current": dict(LibvirtDriver.DEFAULT_BIOS_ATTRIBUTES), "pending": {}}
        )
        return found

    def get_bios(self: Any, identity: str) -> dict[str, Any]:
        data = load()
        current = dict(entry(data, identity)["current"])
        save(data)
        return current

    def set_bios(self: Any, identity: str, attributes: dict[str, Any]) -> None:
        data = load()
        e = entry(data, identity)
        # The libvirt driver stores every value as a string (domain XML attributes).
        e["current" if at_patch else "pending"].update({k: str(v) for k, v in attributes.items()})
        save(data)

    def reset_bios(self: Any, identity: str) -> None:
        data = load()
        data[identity] = {"current": dict(LibvirtDriver.DEFAULT_BIOS_ATTRIBUTES), "pending": {}}
        save(data)

    real_set_power = fakedriver.FakeDriver.set_power_state

    def set_power_state(self: Any, identity: str, state: str) -> None:
        real_set_power(self, identity, state)
        if "On" in state or "Restart" in state:  # the BIOS takes pending settings at POST
            data = load()
            e = entry(data, identity)
            e["current"].update(e.pop("pending", {}))
            e["pending"] = {}
            save(data)

    fakedriver.FakeDriver.get_bios = get_bios
    fakedriver.FakeDriver.set_bios = set_bios
    fakedriver.FakeDriver.reset_bios = reset_bios
    fakedriver.FakeDriver.set_power_state = set_power_state
    from sushy_tools.emulator.main import app  # type: ignore[import-untyped]
    from sushy_tools.emulator.main import main as emulator_main

    etags = os.environ.get("BIOS_ETAGS", "")
    if etags:
        _enforce_etags(app, etags, load, save, int(os.environ.get("BIOS_STALE_PATCHES") or 0))

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
