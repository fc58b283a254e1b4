"""A small real Kubernetes API server for the handoff tests: the few endpoints `provision.handoff.kube` uses
(nodes, namespaces, MachineConfigPools, KubeletConfigs, StorageClasses), bearer-token auth, JSON
Patch with `test`, resourceVersion bumps, Status objects on errors. Every request is logged to a
JSON-lines file so a test can assert what was called.

Run: python -m tests.support.kubeapi PORT STATE.json LOG.jsonl TOKEN
STATE.json seeds the objects: {"nodes": {name: node}, ...}.
"""

from __future__ import annotations

import copy
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES = {
    ("api", "v1", "nodes"): "nodes",
    ("api", "v1", "namespaces"): "namespaces",
    ("apis", "machineconfiguration.openshift.io", "v1", "machineconfigpools"): "machineconfigpools",
    ("apis", "machineconfiguration.openshift.io", "v1", "kubeletconfigs"): "kubeletconfigs",
    ("apis", "storage.k8s.io", "v1", "storageclasses"): "storageclasses",
}


class PatchError(Exception):
    pass


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge member by member, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for op in ops:
        parts = [_unescape(p) for p in op["path"].split("/")[1:]]
        parent: Any = out
        for p in parts[:-1]:
            if not isinstance(parent, dict) or p not in parent:
                raise PatchError(f"path {op['path']}: {p} does not exist")
            parent = parent[p]
        last = parts[-1]
        if op["op"] == "test":
            if parent.get(last) != op["value"]:
                raise PatchError(f"test failed at {op['path']}: {parent.get(last)!r} != {op['value']!r}")
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and last not in parent:
                raise PatchError(f"replace at {op['path']}: no such member")
            parent[last] = op["value"]
        elif op["op"] == "remove":
            parent.pop(last)
        else:
            raise PatchError(f"op {op['op']} not supported")
    return out


class Server(ThreadingHTTPServer):
    def __init__(self, port: int, state: dict[str, dict[str, Any]], log: str, token: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.log_path = log
        self.token = token
        self.version = 100


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the JSON log says it all
        return

    def _send(self, code: int, body: dict[str, Any]) -> None:
        blob = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        )

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        with open(self.server.log_path, "a") as log:
            log.write(
                json.dumps(
                    {
                        "method": method,
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                )
                + "\n"
            )
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._status(401, "Unauthorized", "Unauthorized")
            return
        parts = tuple(p for p in self.path.split("?")[0].split("/") if p)
        kind = ROUTES.get(parts[:-1]) if len(parts) > 1 else None
        name = parts[-1] if kind else None
        if kind is None:
            kind = ROUTES.get(parts)
        if kind is None:
            self._status(404, "NotFound", f"no route {self.path}")
            return
        store = self.server.state.setdefault(kind, {})
        if method == "POST" and name is None and isinstance(body, dict):
            new = body["metadata"]["name"]
            if new in store:
                self._status(409, "AlreadyExists", f"{kind} {new} already exists")
                return
            self.server.version += 1
            body["metadata"]["resourceVersion"] = str(self.server.version)
            store[new] = body
            self._send(201, body)
            return
        if name is None or name not in store:
            self._status(404, "NotFound", f'{kind} "{name}" not found')
            return
        if method == "GET":
            self._send(200, store[name])
        elif method == "PATCH":
            kind_of_patch = self.headers.get("Content-Type")
            try:
                if kind_of_patch == "application/json-patch+json" and isinstance(body, list):
                    patched = json_patch(store[name], body)
                elif kind_of_patch == "application/merge-patch+json" and isinstance(body, dict):
                    want = (body.get("metadata") or {}).get("resourceVersion")
                    if want is not None and want != store[name]["metadata"]["resourceVersion"]:
                        self._status(409, "Conflict", "the object has been modified")
                        return
                    patched = merge_patch(store[name], body)
                else:
                    self._status(415, "UnsupportedMediaType", f"{kind_of_patch} with {type(body).__name__}")
                    return
            except PatchError as exc:
                self._status(422, "Invalid", str(exc))
                return
            self.server.version += 1
            patched["metadata"]["resourceVersion"] = str(self.server.version)
            store[name] = patched
            self._send(200, patched)
        else:
            self._status(405, "MethodNotAllowed", f"{method} with {type(body).__name__}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


def main() -> None:
    port, state_file, log, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    with open(state_file) as f:
        state = json.load(f)
    Server(port, state, log, token).serve_forever()


if __name__ == "__main__":
    main()
