"""A small threaded HTTP proxy that sits in front of a real Redfish service and misbehaves on purpose.

Random faults (seeded, so a run is reproducible): 5xx answers, connection resets, 409s, slow replies.
Scripted rules imitate vendor quirks the emulator cannot: a rule sees (method, path, body) and may
answer itself, rewrite the request body, or pass. Faults are injected before the request reaches
the service, so a retried request never doubles an action.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None


# A rule returns a Reply to answer instead of the service, a dict to forward as the new JSON body,
# or None to pass the request through unchanged.
Rule = Callable[[str, str, dict[str, Any] | None], "Reply | dict[str, Any] | None"]


def redfish_error(message_id: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "Base.1.8.GeneralError",
            "message": message,
            "@Message.ExtendedInfo": [{"MessageId": message_id, "Message": message, "Severity": "Warning"}],
        }
    }


@dataclass
class FaultPlan:
    fail_rate: float = 0.0
    kinds: tuple[str, ...] = ("5xx", "reset", "409", "slow")
    slow_s: float = 0.2
    seed: int = 1234
    rules: list[Rule] = field(default_factory=list)
    # Rewrites a JSON answer of the service: (method, path, document) -> new document or None.
    rewrite: Callable[[str, str, dict[str, Any]], dict[str, Any] | None] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.fail_rate:
                return None
            # Round-robin over the kinds, so every kind shows up once a few calls have failed.
            kind = self.kinds[sum(self.counts.values()) % len(self.kinds)]
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counts instead
        return

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _handle(self) -> None:
        plan = self.server.plan
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip().startswith(b"{") else None
        self.server.requests.append((self.command, self.path))
        for rule in plan.rules:
            out = rule(self.command, self.path, body)
            if isinstance(out, Reply):
                data = json.dumps(out.body).encode() if out.body is not None else b""
                self._send(out.status, data, [("Content-Type", "application/json")])
                return
            if isinstance(out, dict):
                body, raw = out, json.dumps(out).encode()
        kind = plan.draw()
        if kind == "reset":
            self._reset()
            return
        if kind == "5xx":
            self._send(
                503, json.dumps(redfish_error("Base.1.8.ServiceTemporarilyUnavailable", "busy")).encode(), []
            )
            return
        if kind == "409":
            msg = redfish_error("Base.1.8.ResourceInUse", "The resource is in use by another operation")
            self._send(409, json.dumps(msg).encode(), [])
            return
        if kind == "slow":
            time.sleep(plan.slow_s)
        self._forward(raw)

    def _forward(self, raw: bytes) -> None:
        host, port = self.server.upstream
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")
        }
        if raw:
            headers["Content-Length"] = str(len(raw))
        try:
            conn.request(self.command, self.path, body=raw or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            rewrite = self.server.plan.rewrite
            if rewrite is not None and data.strip().startswith(b"{"):
                new = rewrite(self.command, self.path, json.loads(data))
                if new is not None:
                    data = json.dumps(new).encode()
            self._send(resp.status, data, resp.getheaders())
        finally:
            conn.close()

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], plan: FaultPlan) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.plan = plan
        self.requests: list[tuple[str, str]] = []


@contextmanager
def fault_proxy(upstream_port: int, plan: FaultPlan) -> Iterator[_ProxyServer]:
    """Serve on a free loopback port in a thread; always shut down on exit."""
    server = _ProxyServer(("127.0.0.1", upstream_port), plan)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
