"""A small Redfish service for tests that implements `$expand` to the letter of DMTF DSP0266, which
sushy-static and sushy-emulator do not: run as `python -m tests.support.expand_server`.

It serves a short-form mockup directory (`<dir>/<path under /redfish/v1>/index.json`, what
`tests.support.mockup.write_tree` writes), read from disk on every request, so a test may rewrite
the tree between two reads (an event log that gains an entry). It writes one line per request
(`METHOD target`) to `--requests-log`, which is how the tests and the bench count requests.

$expand (DSP0266 "Query parameters", ExpandQuery):
- `*`  expands every hyperlink, `.` those not inside a `Links` property, `~` only those inside one;
- `($levels=n)` expands n levels down (default 1), each level with the same option;
- a reference is an object whose only property is `@odata.id`; a fragment (`#/...`) is part of its
  resource and never expanded; an annotation (`@...`) is never walked into;
- an unsupported query parameter answers 501, a malformed `$expand` or levels out of range 400.
`--no-expand` serves the same tree without ExpandQuery in the service root, and answers 501 to it.

Also: POST `<LogService>/Actions/LogService.ClearLog` empties that log's Entries (204); `--fail
PATH=STATUS` answers STATUS (with a Redfish error body) for that path; `--delay-s` slows every GET
the way a real BMC is slow.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ROOT = "/redfish/v1"
MAX_LEVELS = 6
EXPAND_RE = re.compile(r"([*.~])(?:\(\$levels=(\d+)\))?")
CLEAR_LOG = "/Actions/LogService.ClearLog"


def expand_features(max_levels: int) -> dict[str, Any]:
    return {"ExpandAll": True, "Levels": True, "Links": True, "NoLinks": True, "MaxLevels": max_levels}


class Tree:
    """The mockup directory, read on every request."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def file_of(self, path: str) -> Path:
        rel = path[len(ROOT) :].strip("/") if path.startswith(ROOT) else None
        if rel is None or ".." in rel.split("/"):
            return self.directory / "\0"  # never a file
        return self.directory / rel / "index.json" if rel else self.directory / "index.json"

    def load(self, path: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.file_of(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None


def is_ref(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"@odata.id"} and isinstance(node["@odata.id"], str)


def expand(doc: dict[str, Any], option: str, levels: int, load: Any) -> dict[str, Any]:
    """`doc` with its hyperlinks expanded as `$expand=<option>($levels=<levels>)` asks."""

    def walk(node: Any, in_links: bool) -> Any:
        if isinstance(node, list):
            return [walk(v, in_links) for v in node]
        if not isinstance(node, dict):
            return node
        if is_ref(node):
            target = node["@odata.id"]
            wanted = option == "*" or (option == "." and not in_links) or (option == "~" and in_links)
            if wanted and "#" not in target:
                body = load(target.rstrip("/"))
                if body is not None:
                    return expand(body, option, levels - 1, load) if levels > 1 else body
            return node
        return {k: (v if k.startswith("@") else walk(v, in_links or k == "Links")) for k, v in node.items()}

    return {k: (v if k.startswith("@") else walk(v, k == "Links")) for k, v in doc.items()}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": f"Base.1.8.{code}",
            "message": message,
            "@Message.ExtendedInfo": [{"MessageId": f"Base.1.8.{code}", "Message": message}],
        }
    }


class Handler(BaseHTTPRequestHandler):
    server: ExpandServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("OData-Version", "4.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:
        self.server.count(self.command, self.path)
        if self.server.delay_s:
            time.sleep(self.server.delay_s)  # a real BMC's 0.2-2 s per answer, scaled down
        url = urlsplit(self.path)
        path = unquote(url.path).rstrip("/") or "/"
        if path in self.server.fail:
            status = self.server.fail[path]
            self._reply(status, error_body("GeneralError", f"{path}: injected failure {status}"))
            return
        if path == "/redfish":
            self._reply(200, {"v1": f"{ROOT}/"})
            return
        doc = self.server.tree.load(path)
        if doc is None:
            self._reply(404, error_body("ResourceMissingAtURI", f"The resource at {path} was not found."))
            return
        if path == ROOT:
            doc = self.server.advertise(doc)
        query = parse_qsl(url.query, keep_blank_values=True)
        for name, value in query:
            if name != "$expand" or not self.server.expand:
                self._reply(501, error_body("QueryNotSupported", f"Query parameter {name} is not supported."))
                return
            m = EXPAND_RE.fullmatch(value)
            if m is None:
                msg = f"The value {value} for the query parameter $expand is of a different format."
                self._reply(400, error_body("QueryParameterValueFormatError", msg))
                return
            levels = int(m.group(2) or 1)
            if not 1 <= levels <= self.server.max_levels:
                msg = f"The value {levels} for $levels is not in the range 1 to {self.server.max_levels}."
                self._reply(400, error_body("QueryParameterOutOfRange", msg))
                return
            doc = expand(doc, m.group(1), levels, self.server.tree.load)
        self._reply(200, doc)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self.server.count(self.command, self.path)
        self._drain()
        path = unquote(urlsplit(self.path).path).rstrip("/")
        if path in self.server.fail:
            status = self.server.fail[path]
            self._reply(status, error_body("GeneralError", f"{path}: injected failure {status}"))
            return
        if path.endswith(CLEAR_LOG) and self.server.clear_log(path[: -len(CLEAR_LOG)]):
            self._reply(204)
            return
        self._reply(405, error_body("ActionNotSupported", f"{path} does not accept POST."))

    def do_PATCH(self) -> None:
        self.server.count(self.command, self.path)
        self._drain()
        self._reply(405, error_body("ActionNotSupported", "This service is read-only."))

    do_DELETE = do_PATCH


class ExpandServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        tree: Tree,
        *,
        expand: bool,
        max_levels: int,
        requests_log: Path | None,
        fail: dict[str, int],
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(address, Handler)
        self.tree = tree
        self.expand = expand
        self.max_levels = max_levels
        self.fail = fail
        self.delay_s = delay_s
        self._log = requests_log
        self._lock = threading.Lock()

    def count(self, method: str, target: str) -> None:
        if self._log is None:
            return
        with self._lock, self._log.open("a", encoding="utf-8") as f:
            f.write(f"{method} {target}\n")

    def advertise(self, root: dict[str, Any]) -> dict[str, Any]:
        features = dict(root.get("ProtocolFeaturesSupported") or {})
        features.pop("ExpandQuery", None)
        if self.expand:
            features["ExpandQuery"] = expand_features(self.max_levels)
        return {**root, "ProtocolFeaturesSupported": features}

    def clear_log(self, service: str) -> bool:
        """Empty the log service's Entries collection (and remove the entries' files)."""
        doc = self.tree.load(service)
        entries = (doc or {}).get("Entries")
        if not isinstance(entries, dict) or not is_ref(entries):
            return False
        path = entries["@odata.id"].rstrip("/")
        coll = self.tree.load(path)
        if coll is None:
            return False
        for member in coll.get("Members") or []:
            if is_ref(member):
                shutil.rmtree(self.tree.file_of(member["@odata.id"].rstrip("/")).parent, ignore_errors=True)
        coll["Members"] = []
        coll["Members@odata.count"] = 0
        self.tree.file_of(path).write_text(json.dumps(coll, indent=1), encoding="utf-8")
        return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="expand_server", description="A Redfish test server with $expand.")
    ap.add_argument("--mockup", type=Path, required=True, help="short-form mockup directory")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--no-expand", action="store_true", help="do not offer $expand")
    ap.add_argument("--max-levels", type=int, default=MAX_LEVELS)
    ap.add_argument("--requests-log", type=Path, help="append one line per request here")
    ap.add_argument("--fail", action="append", default=[], metavar="PATH=STATUS")
    ap.add_argument("--delay-s", type=float, default=0.0, help="answer each GET this much later")
    args = ap.parse_args(argv)
    fail: dict[str, int] = {}
    for item in args.fail:
        path, _, status = item.rpartition("=")
        fail[path.rstrip("/")] = int(status)
    server = ExpandServer(
        (args.host, args.port),
        Tree(args.mockup),
        expand=not args.no_expand,
        max_levels=args.max_levels,
        requests_log=args.requests_log,
        fail=fail,
        delay_s=args.delay_s,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
