"""sushy-emulator (fake driver, real power and boot state) whose hardware is a Redfish mockup tree.

The fake driver keeps power state and the boot override but exposes no DIMMs, GPUs or drives. Here
every GET the mockup tree (tests.support.mockup, written as one JSON file {path: document}) can answer
is answered from it, the system's own document merges the mockup's inventory fields into the
emulator's live one, and everything else (power actions, boot PATCHes) is the emulator's. The tree
file is read on every request, so a test swaps a part by rewriting it.

Usage: python -m tests.support.rich_emulator --tree FILE --mockup-system /redfish/v1/Systems/1
           --uuid UUID --config FILE
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

LIVE_KEYS = ("PowerState", "Boot", "Actions", "Id", "@odata.id", "@odata.context", "@odata.type")


def main() -> int:
    argv = sys.argv[1:]

    def take(flag: str) -> str:
        i = argv.index(flag)
        value = argv[i + 1]
        del argv[i : i + 2]
        return value

    tree_file, mock_sys, uuid = take("--tree"), take("--mockup-system"), take("--uuid")
    live_sys = f"/redfish/v1/Systems/{uuid}"
    sys.argv = [sys.argv[0], *argv]
    random.randint = lambda a, b: 1  # power changes land after ~1 s

    import flask
    from sushy_tools.emulator.main import app  # type: ignore[import-untyped]
    from sushy_tools.emulator.main import main as emulator_main

    def tree() -> dict[str, Any]:
        with open(tree_file) as f:
            text = f.read().replace(f'"{mock_sys}', f'"{live_sys}')
        data: dict[str, Any] = json.loads(text)
        return {k.replace(mock_sys, live_sys, 1) if k.startswith(mock_sys) else k: v for k, v in data.items()}

    @app.before_request  # type: ignore[untyped-decorator]
    def from_mockup() -> Any:
        path = flask.request.path.rstrip("/") or "/"
        if flask.request.method != "GET" or path == live_sys:
            return None
        doc = tree().get(path) or tree().get(path + "/")
        if doc is None:
            return None
        return flask.Response(json.dumps(doc), status=200, mimetype="application/json")

    @app.after_request  # type: ignore[untyped-decorator]
    def merge_system(resp: Any) -> Any:
        path = flask.request.path.rstrip("/")
        if flask.request.method != "GET" or path != live_sys or resp.status_code != 200:
            return resp
        live = json.loads(resp.get_data())
        mock = tree().get(live_sys, {})
        merged = {**mock, **{k: live[k] for k in LIVE_KEYS if k in live}}
        resp.set_data(json.dumps(merged))
        return resp

    return int(emulator_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
