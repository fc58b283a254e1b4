"""The boot server's HTTP/1.0 messages: limits, a parsed request, a response and its head.

Pure data and parsing; the engine that moves them over sockets is `provision.install.httpd`.
"""

from __future__ import annotations

import http.client
import io
import os
import resource
import stat
from dataclasses import dataclass, field
from email.message import Message
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO


def _default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, soft - 128))


@dataclass(frozen=True)
class Limits:
    """Timeouts and bounds of the engine (the module docstring of httpd says what each does)."""

    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    workers: int = 32
    max_connections: int = field(default_factory=_default_max_connections)
    max_queued: int = 128
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024
    shed_after_s: float = 1.0


class BadRequest(Exception):
    """A request the engine answers itself, with this status, before any handler sees it."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass
class HttpRequest:
    client: str
    method: str
    target: str
    version: str
    headers: Message
    declared: int  # Content-Length
    body: bytes | None = None  # None: over max_body_bytes, left unread

    @classmethod
    def parse(cls, client: str, head: bytes) -> HttpRequest:
        line, _, fields = head.partition(b"\n")
        parts = line.rstrip(b"\r").decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[1].isprintable():
            raise BadRequest(400, "not an HTTP request line")
        method, target, version = parts
        try:
            headers = http.client.parse_headers(io.BytesIO(fields + b"\r\n\r\n"))
        except http.client.HTTPException as exc:
            raise BadRequest(431, f"bad header fields ({type(exc).__name__})") from None
        if headers.get("Transfer-Encoding"):
            raise BadRequest(411, "a body without Content-Length")
        length = (headers.get("Content-Length") or "0").strip()
        if not length.isdigit() or len(length) > 18:
            raise BadRequest(400, "bad Content-Length")
        return cls(client, method, target, version, headers, int(length))


@dataclass
class Response:
    status: int
    body: bytes = b""
    file: Path | None = None  # sent instead of body
    content_type: str = "text/plain; charset=utf-8"
    no_store: bool = True


def response_head(status: int, size: int, content_type: str, no_store: bool) -> bytes:
    reason = http.client.responses.get(status, "")
    lines = [
        f"HTTP/1.0 {status} {reason}",
        "Server: inferno-provision",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {size}",
        "Connection: close",
    ]
    if no_store:
        lines.append("Cache-Control: no-store")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def open_regular(path: Path) -> BinaryIO:
    """Open a file to send; a FIFO or device put in its place is refused, never blocked on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name}: not a regular file")
    return os.fdopen(fd, "rb")
