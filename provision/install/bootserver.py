"""Adapter: the boot server. HTTP for installers: iPXE scripts, kickstarts, boot images, callbacks.

A host's iPXE script and kickstart are served only while it has a running provisioning run and
only with that run's token (query `token=`; callbacks may send `Authorization: Bearer`). Anything
else gets 403 or 404 with no content, and the log line never carries the token. A host whose
install finished gets a "boot from local disk" script, so a host left on PXE never reinstalls.

Embeddable: `BootServer(...)` as a context manager runs it in a thread (for `provision host`);
`provision serve` runs it in the foreground.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from kickstart.netboot import render_ipxe_local
from provision.install.render import ipxe_for, kickstart_for
from provision.model.catalog import Catalog
from provision.model.errors import ExternalError, ProvisionError
from provision.model.hosts import DiskId
from provision.store.state import HostState, Run, StateStore

log = logging.getLogger("provision.install.bootserver")

# Past these the install is done: PXE must not start it again.
INSTALLED_STATES = frozenset(
    {HostState.installed, HostState.burning_in, HostState.accepted, HostState.rejected, HostState.handed_off}
)
EVENTS = ("started", "finished", "failed")
MAX_BODY_BYTES = 64 * 1024
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) ([A-Za-z0-9+/]+={0,3})(\s.*)?$")
_TOKEN_IN_QUERY = re.compile(r"(token=)[^&\s]*")


def redact(path: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1<redacted>", path)


def parse_host_keys(text: str) -> list[dict[str, str]]:
    """OpenSSH public host keys from a callback body, with the SHA256 fingerprint ssh-keygen shows."""
    keys: list[dict[str, str]] = []
    for line in text.splitlines():
        m = _HOST_KEY.match(line.strip())
        if not m:
            continue
        try:
            blob = base64.b64decode(m.group(3), validate=True)
        except ValueError:
            continue
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        keys.append({"type": m.group(1), "key": m.group(3), "fingerprint": f"SHA256:{digest}"})
    return keys


@dataclass(frozen=True)
class Request:
    """One answered request, as logged: method, path (token redacted), status, host if known."""

    method: str
    path: str
    status: int
    host: str | None
    note: str = ""


class BootServer:
    def __init__(
        self,
        catalog: Catalog,
        store: StateStore,
        listen: tuple[str, int] = ("127.0.0.1", 8080),
        public_url: str | None = None,
        images_dir: Path | None = None,
        inspected: Callable[[str], tuple[DiskId, ...]] | None = None,
    ) -> None:
        """`inspected(host)`: the boot pair an inspection found, for hosts.yaml entries without one."""
        self.catalog = catalog
        self.store = store
        self.images_dir = images_dir
        self.inspected = inspected
        self.requests: deque[Request] = deque(maxlen=10_000)
        self._lock = threading.Lock()  # one callback's state changes at a time
        try:
            self._httpd = _Server(listen, _Handler, self)
        except OSError as exc:
            raise ExternalError(
                f"boot server: cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}"
            ) from None
        host, port = self._httpd.server_address[:2]
        self.url = (public_url or f"http://{host!s}:{port}").rstrip("/")
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def serve_forever(self) -> None:
        log.info("boot server listening on %s (public URL %s)", self._httpd.server_address, self.url)
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="bootserver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- decisions (called from handler threads) -----------------------------------------------
    def run_for(self, host: str, token: str | None) -> Run | None:
        if not token:
            return None
        return self.store.check_token(host, token)

    def ipxe(self, host: str, token: str | None) -> tuple[int, str, str]:
        """(status, script, what it is): the install script, "boot local", or nothing."""
        run = self.run_for(host, token)
        if run is not None and token is not None:
            return (
                200,
                ipxe_for(self.catalog, self.catalog.hosts[host], token, self.url),
                f"install, run {run.id}",
            )
        if self.store.get_host_state(host) in INSTALLED_STATES:
            return 200, render_ipxe_local(host), "local boot"
        return 403, "", "no running install"

    def kickstart(self, host: str, token: str | None) -> tuple[int, str, str]:
        run = self.run_for(host, token)
        if run is None or token is None:
            return 403, "", "no running install"
        entry = self.catalog.hosts[host]
        disks = self.inspected(host) if self.inspected and not entry.boot_disks else ()
        return 200, kickstart_for(self.catalog, entry, token, self.url, disks), f"run {run.id}"

    def callback(self, host: str, event: str, token: str | None, body: str) -> int:
        with self._lock:
            run = self.run_for(host, token)
            if run is None:
                return 403
            payload: dict[str, Any] = {"client": "installer"}
            if event == "finished":
                keys = parse_host_keys(body)
                if not keys:
                    # Without host keys the controller cannot pin them: the install is not usable.
                    log.warning("finished callback from %s carried no SSH host key", host)
                    return 400
                payload["host_keys"] = keys
            elif event == "failed":
                payload["log_tail"] = body[-16_000:]
            else:
                payload["message"] = body[:1000]
            self.store.add_event(host, f"install.{event}", payload, run_id=run.id)
            if event == "finished":
                self.store.set_host_state(host, HostState.installed, reason=f"install callback, run {run.id}")
            if event in ("finished", "failed"):
                # The token served its purpose: from now on PXE gets "boot local" or 403.
                self.store.revoke_tokens(run.id)
            return 204


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops SYNs when a whole rack PXE-boots at once.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: BootServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "inferno-provision"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return  # each request is logged once, redacted, by _answer

    def _token(self, query: dict[str, list[str]]) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip() or None
        values = query.get("token")
        return values[0] if values else None

    def _answer(self, status: int, body: bytes = b"", host: str | None = None, note: str = "") -> None:
        app = self.server.app
        path = redact(self.path)
        app.requests.append(Request(self.command, path, status, host, note))
        level = logging.INFO if status < 400 else logging.WARNING
        suffix = f" ({note})" if note else ""
        log.log(level, "%s %s %s -> %d%s", self.client_address[0], self.command, path, status, suffix)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        split = urlsplit(self.path)
        return [p for p in split.path.split("/") if p], parse_qs(split.query)

    def do_GET(self) -> None:
        parts, query = self._route()
        app = self.server.app
        try:
            if len(parts) == 2 and parts[0] == "images":
                self._image(parts[1])
                return
            if len(parts) != 2 or parts[0] not in ("ipxe", "ks"):
                self._answer(404)
                return
            host = parts[1]
            if host not in app.catalog.hosts:
                self._answer(404)
                return
            token = self._token(query)
            status, text, note = app.ipxe(host, token) if parts[0] == "ipxe" else app.kickstart(host, token)
            self._answer(status, text.encode() if status == 200 else b"", host=host, note=note)
        except ProvisionError as exc:
            log.error("cannot answer %s: %s", redact(self.path), redact(str(exc)))
            self._answer(500)

    def do_POST(self) -> None:
        parts, query = self._route()
        app = self.server.app
        try:
            if len(parts) != 3 or parts[0] != "callback" or parts[2] not in EVENTS:
                self._answer(404)
                return
            host, event = parts[1], parts[2]
            if host not in app.catalog.hosts:
                self._answer(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES or length < 0:
                self._answer(413, host=host)
                return
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            self._answer(app.callback(host, event, self._token(query), body), host=host)
        except ValueError:
            self._answer(400)
        except ProvisionError as exc:
            log.error("cannot record %s: %s", redact(self.path), redact(str(exc)))
            self._answer(500)

    def _image(self, name: str) -> None:
        images = self.server.app.images_dir
        path = images / name if images is not None and IMAGE_NAME.match(name) else None
        if path is None or not path.is_file():
            self._answer(404)
            return
        size = path.stat().st_size
        shown = redact(self.path)
        self.server.app.requests.append(Request("GET", shown, 200, None, f"{size} bytes"))
        log.info("%s GET %s -> 200 (%d bytes)", self.client_address[0], shown, size)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with path.open("rb") as src:
            shutil.copyfileobj(src, self.wfile, 1024 * 1024)
