"""A small real Kubernetes API server for the handoff tests: the few endpoints `provision.handoff` uses
(nodes, namespaces, MachineConfigPools, KubeletConfigs, StorageClasses, CertificateSigningRequests
with their /approval and /status subresources, Secrets and metal3 BareMetalHosts in namespaces),
bearer-token auth, lists, JSON Patch with `test`, resourceVersion bumps and preconditions, Status
objects on errors. Every request is logged to a JSON-lines file (Secret data redacted) so a test can
assert what was called.

Two simulations stand in for what runs on a real cluster:
- a kubelet joining (kubelet TLS bootstrap): for each entry of the seed's "joining" list, or posted to
  POST /control/join, the server creates the node's pending client CSR (a real EC P-256 X.509 CSR);
  once that is approved, the serving CSR (SANs: the entry's dns_names and addresses); once that is
  approved, the Node (Ready, labelled kubernetes.io/hostname, the entry's capacity).
- the baremetal-operator: each GET of a BareMetalHost advances its status.provisioning.state one step
  (registering, inspecting, available, provisioning, provisioned); at provisioned the Node is created.
  The seed's "bmh_faults" {name: {"at": state, "message": text}} stops a host at that state in error.

Run: python -m tests.support.kubeapi PORT STATE.json LOG.jsonl TOKEN
STATE.json seeds the objects: {"nodes": {name: node}, "joining": [...], "bmh_faults": {...}, ...};
namespaced objects are keyed "namespace/name".
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.kubecsr import client_csr, serving_csr
from tests.support.procs import free_port, running

ROUTES = {
    ("api", "v1", "nodes"): "nodes",
    ("api", "v1", "namespaces"): "namespaces",
    ("apis", "machineconfiguration.openshift.io", "v1", "machineconfigpools"): "machineconfigpools",
    ("apis", "machineconfiguration.openshift.io", "v1", "kubeletconfigs"): "kubeletconfigs",
    ("apis", "storage.k8s.io", "v1", "storageclasses"): "storageclasses",
    ("apis", "certificates.k8s.io", "v1", "certificatesigningrequests"): "certificatesigningrequests",
}
# group/version prefix -> plural -> kind, for objects under /namespaces/<ns>/
NAMESPACED = {
    ("api", "v1"): {"secrets": "secrets"},
    ("apis", "metal3.io", "v1alpha1"): {"baremetalhosts": "baremetalhosts"},
}
SUBRESOURCES = {"certificatesigningrequests": {"approval", "status"}}
BMH_STATES = ("registering", "inspecting", "available", "provisioning", "provisioned")
CSR_CONDITIONS = {"Approved", "Denied", "Failed"}


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


@dataclass(frozen=True)
class Route:
    kind: str
    namespace: str | None = None
    name: str | None = None
    sub: str | None = None

    @property
    def key(self) -> str | None:
        if self.name is None:
            return None
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def resolve(parts: tuple[str, ...]) -> Route | None:
    for prefix, plurals in NAMESPACED.items():
        n = len(prefix)
        if (
            parts[:n] == prefix
            and len(parts) >= n + 3
            and parts[n] == "namespaces"
            and parts[n + 2] in plurals
        ):
            rest = parts[n + 3 :]
            if len(rest) <= 1:
                return Route(plurals[parts[n + 2]], parts[n + 1], rest[0] if rest else None)
    for prefix, kind in ROUTES.items():
        n = len(prefix)
        if parts[:n] == prefix and len(parts) <= n + 2:
            rest = parts[n:]
            sub = rest[1] if len(rest) == 2 else None
            if sub is not None and sub not in SUBRESOURCES.get(kind, set()):
                return None
            return Route(kind, None, rest[0] if rest else None, sub)
    return None


def ready_node(
    name: str, capacity: dict[str, str] | None = None, addresses: list[str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": []},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "capacity": dict(capacity or {}),
            "addresses": [{"type": "InternalIP", "address": a} for a in addresses or []]
            + [{"type": "Hostname", "address": name}],
        },
    }


class Server(ThreadingHTTPServer):
    def __init__(self, port: int, state: dict[str, Any], log: str, token: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.joining: dict[str, dict[str, Any]] = {}  # CSR name -> the joining entry it belongs to
        self.bmh_faults: dict[str, dict[str, str]] = state.pop("bmh_faults", {})
        self.state: dict[str, dict[str, Any]] = state
        self.log_path = log
        self.token = token
        self.version = 100
        self.lock = threading.Lock()
        for entry in state.pop("joining", []):
            self.join(entry)

    def put(self, kind: str, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.version)
        if key not in self.state.get(kind, {}):  # stamped at creation, as the API server does
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.state.setdefault(kind, {})[key] = obj
        return obj

    def join(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The kubelet's first step: its bootstrap client CSR."""
        node = entry["node"]
        name = f"csr-{node}-client"
        self.joining[name] = entry
        return self.put("certificatesigningrequests", name, client_csr(name, node))

    def csr_decided(self, name: str, obj: dict[str, Any]) -> None:
        """What kube-controller-manager and the kubelet do after an approval."""
        entry = self.joining.pop(name, None)
        approved = any(c.get("type") == "Approved" for c in obj["status"].get("conditions", []))
        if entry is None or not approved:
            return
        node = entry["node"]
        if obj["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet":
            serving = f"csr-{node}-serving"
            self.joining[serving] = entry
            dns, ips = entry.get("dns_names", [node]), entry.get("addresses", [])
            self.put("certificatesigningrequests", serving, serving_csr(serving, node, dns, ips))
        elif node not in self.state.get("nodes", {}):
            self.put("nodes", node, ready_node(node, entry.get("capacity"), entry.get("addresses")))

    def advance_bmh(self, key: str) -> None:
        """The baremetal-operator's next step for this host."""
        bmh = self.state["baremetalhosts"][key]
        status = bmh.setdefault("status", {})
        if status.get("operationalStatus") == "error":
            return
        current = (status.get("provisioning") or {}).get("state", "")
        if current == BMH_STATES[-1]:
            return
        nxt = BMH_STATES[BMH_STATES.index(current) + 1] if current in BMH_STATES else BMH_STATES[0]
        status["provisioning"] = {"state": nxt}
        status["operationalStatus"] = "OK" if nxt != "registering" else "discovered"
        name = bmh["metadata"]["name"]
        fault = self.bmh_faults.get(name)
        if fault and fault.get("at") == nxt:
            status.update(
                operationalStatus="error", errorType=f"{nxt} error", errorMessage=fault.get("message", "")
            )
        elif nxt == "provisioned" and name not in self.state.get("nodes", {}):
            self.put("nodes", name, ready_node(name))
        self.put("baremetalhosts", key, bmh)


def _redacted(body: Any) -> Any:
    if isinstance(body, dict) and body.get("kind") == "Secret":
        return {**body, **{k: "<redacted>" for k in ("data", "stringData") if k in body}}
    return body


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
            entry = {
                "method": method,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": _redacted(body),
            }
            log.write(json.dumps(entry) + "\n")
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._status(401, "Unauthorized", "Unauthorized")
            return
        parts = tuple(p for p in self.path.split("?")[0].split("/") if p)
        with self.server.lock:
            if parts == ("control", "join") and method == "POST" and isinstance(body, dict):
                self._send(201, self.server.join(body))
                return
            route = resolve(parts)
            if route is None:
                self._status(404, "NotFound", f"no route {self.path}")
                return
            self._dispatch(method, route, body)

    def _dispatch(self, method: str, route: Route, body: Any) -> None:
        srv = self.server
        store = srv.state.setdefault(route.kind, {})
        key = route.key
        if key is None:
            if method == "POST" and isinstance(body, dict):
                self._create(route, body)
            elif method == "GET":
                prefix = f"{route.namespace}/" if route.namespace else ""
                items = [o for k, o in sorted(store.items()) if k.startswith(prefix)]
                self._send(
                    200, {"kind": "List", "metadata": {"resourceVersion": str(srv.version)}, "items": items}
                )
            else:
                self._status(405, "MethodNotAllowed", f"{method} on a collection")
            return
        if key not in store:
            self._status(404, "NotFound", f'{route.kind} "{route.name}" not found')
            return
        if method == "GET":
            if route.kind == "baremetalhosts" and route.sub is None:
                srv.advance_bmh(key)
            self._send(200, store[key])
        elif method == "PUT" and route.sub is not None and isinstance(body, dict):
            self._put_sub(route, key, body)
        elif method == "PATCH" and route.sub is None:
            self._patch(route, key, body)
        else:
            self._status(405, "MethodNotAllowed", f"{method} with {type(body).__name__}")

    def _create(self, route: Route, body: dict[str, Any]) -> None:
        meta = body.setdefault("metadata", {})
        if route.namespace:
            meta["namespace"] = route.namespace
        key = f"{route.namespace}/{meta.get('name')}" if route.namespace else meta.get("name")
        if not meta.get("name"):
            self._status(422, "Invalid", "metadata.name: Required value")
            return
        if key in self.server.state.setdefault(route.kind, {}):
            self._status(409, "AlreadyExists", f'{route.kind} "{meta["name"]}" already exists')
            return
        if route.kind == "certificatesigningrequests":
            body["status"] = {}
        self._send(201, self.server.put(route.kind, str(key), body))

    def _put_sub(self, route: Route, key: str, body: dict[str, Any]) -> None:
        current = self.server.state[route.kind][key]
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want is not None and want != current["metadata"]["resourceVersion"]:
            self._status(409, "Conflict", "the object has been modified; please apply your changes again")
            return
        status = body.get("status") or {}
        updated = copy.deepcopy(current)
        if route.sub == "approval":
            conditions = status.get("conditions") or []
            types = [c.get("type") for c in conditions]
            if not set(types) <= CSR_CONDITIONS or {"Approved", "Denied"} <= set(types):
                self._status(422, "Invalid", f"status.conditions: invalid types {types}")
                return
            updated.setdefault("status", {})["conditions"] = conditions
        else:
            updated["status"] = {
                **updated.get("status", {}),
                **{k: v for k, v in status.items() if k != "conditions"},
            }
        self.server.put(route.kind, key, updated)
        if route.sub == "approval":
            self.server.csr_decided(key, updated)
        self._send(200, updated)

    def _patch(self, route: Route, key: str, body: Any) -> None:
        store = self.server.state[route.kind]
        kind_of_patch = self.headers.get("Content-Type")
        try:
            if kind_of_patch == "application/json-patch+json" and isinstance(body, list):
                patched = json_patch(store[key], body)
            elif kind_of_patch == "application/merge-patch+json" and isinstance(body, dict):
                want = (body.get("metadata") or {}).get("resourceVersion")
                if want is not None and want != store[key]["metadata"]["resourceVersion"]:
                    self._status(409, "Conflict", "the object has been modified")
                    return
                patched = merge_patch(store[key], body)
            else:
                self._status(415, "UnsupportedMediaType", f"{kind_of_patch} with {type(body).__name__}")
                return
        except PatchError as exc:
            self._status(422, "Invalid", str(exc))
            return
        self._send(200, self.server.put(route.kind, key, patched))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")


@dataclass(frozen=True)
class Kube:
    """A running test API server: its kubeconfig (bearer token) and its request log."""

    port: int
    kubeconfig: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@contextmanager
def serving(tmp: Path, seed: dict[str, Any], token: str = "s3cret-token") -> Iterator[Kube]:
    """Start the server on a free loopback port with `seed`; stopped by PID on the way out."""
    port = free_port()
    (tmp / "kubeapi-seed.json").write_text(json.dumps(seed))
    kube = Kube(port, tmp / "kubeconfig", tmp / "kubeapi.jsonl")
    cluster = {"name": "lab", "cluster": {"server": f"http://127.0.0.1:{port}"}}
    kube.kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [cluster],
                "users": [{"name": "op", "user": {"token": token}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "op"}}],
            }
        )
    )
    argv = [sys.executable, "-m", "tests.support.kubeapi", str(port), str(tmp / "kubeapi-seed.json")]
    repo = Path(__file__).resolve().parent.parent.parent
    with running([*argv, str(kube.log), token], log=tmp / "kubeapi.out", port=port, cwd=repo):
        yield kube


def main() -> None:
    port, state_file, log, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    with open(state_file) as f:
        state = json.load(f)
    Server(port, state, log, token).serve_forever()


if __name__ == "__main__":
    main()
