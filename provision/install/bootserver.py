"""Adapter: the boot server. HTTP for installers: iPXE scripts, kickstarts, boot images, callbacks.

A host's iPXE script and kickstart are served only while it has a running provisioning run and
only with that run's token (query `token=`; callbacks may send `Authorization: Bearer`). Anything
else gets 403 or 404 with no content, and the log line never carries the token. A host whose
install finished gets a "boot from local disk" script, so a host left on PXE never reinstalls.

Embeddable: `BootServer(...)` as a context manager runs it in a thread (for `provision host`);
`provision serve` runs it in the foreground. The HTTP engine (timeouts, the bounded worker pool,
connections held and served without a thread each, accept back-off) is `provision.install.httpd`. Any
exception while answering is a 500 with one log line; the token is redacted from every line after
URL decoding, whatever the encoding of the query field's name or value.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from kickstart.netboot import render_ipxe_local
from provision.install import rhcos_routes
from provision.install.firmware_images import ROUTE as FIRMWARE_ROUTE
from provision.install.firmware_images import find_image
from provision.install.httpd import HttpServer
from provision.install.httpmsg import HttpRequest, Limits, Response
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
_TOKEN_TEXT = re.compile(r"(token\s*[=:]\s*)[^&\s]+", re.IGNORECASE)
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


class CallbackBell:
    """Rung when this process's boot server has recorded an install callback of a run: what wakes
    that run's `wait_install` at once instead of at its next read of the store. In-process only;
    a callback that lands in another controller's boot server (a shared PostgreSQL store) is still
    found by the store read that `wait_install` keeps as its slow fallback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, threading.Event] = {}

    def listen(self, run_id: str) -> threading.Event:
        with self._lock:
            return self._runs.setdefault(run_id, threading.Event())

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def ring(self, run_id: str) -> None:
        with self._lock:
            event = self._runs.get(run_id)
        if event is not None:
            event.set()


CALLBACKS = CallbackBell()


def _decoded(text: str, decode: Callable[[str], str]) -> str:
    for _ in range(4):  # %2565 is %65 is e: redact what any decoding would show
        plain = decode(text)
        if plain == text:
            break
        text = plain
    return text


def _shown(text: str) -> str:
    """Decoded text as logged: `token=...` redacted, spaces and control characters %-escaped
    (a line in the log is always one request, whatever the request holds)."""
    text = _TOKEN_TEXT.sub(r"\1<redacted>", text)
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", text)


def redact(target: str) -> str:
    """A request target as logged: URL-decoded, with the value of every query field whose decoded
    name holds "token" (any case) and any `token=...` inside the path or a value redacted."""
    path, sep, query = target.partition("?")
    shown = _shown(_decoded(path, unquote))
    if not sep:
        return shown
    fields = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        name = _decoded(name, unquote_plus)
        if "token" in name.casefold():
            fields.append(f"{_shown(name)}=<redacted>")
        else:
            fields.append(f"{_shown(name)}{eq}{_shown(_decoded(value, unquote_plus))}")
    return f"{shown}?{'&'.join(fields)}"


def redact_text(text: str, *secrets: str | None) -> str:
    """An error message as one log line: the given secrets and any `token=...` redacted."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    text = _TOKEN_TEXT.sub(r"\1<redacted>", " ".join(text.split()))
    return _UNSAFE.sub(lambda m: " " if m.group() == " " else f"%{ord(m.group()):02X}", text)[:300]


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
        limits: Limits | None = None,
    ) -> None:
        """`inspected(host)`: the boot pair an inspection found, for hosts.yaml entries without one.
        `limits`: timeouts and bounds of the HTTP engine (see `provision.install.httpd.Limits`)."""
        self.catalog = catalog
        self.store = store
        self.images_dir = images_dir
        self.inspected = inspected
        self.requests: deque[Request] = deque(maxlen=10_000)
        self._lock = threading.Lock()  # one callback's state changes at a time
        try:
            self.http = HttpServer(listen, self._handle, limits or Limits(), redact, redact_text)
        except OSError as exc:
            raise ExternalError(
                # socket.create_server appends "(while attempting to bind ...)": say the errno's words.
                f"boot server: cannot listen on {listen[0]}:{listen[1]}: "
                f"{os.strerror(exc.errno) if exc.errno else exc}"
            ) from None
        host, port = self.http.address
        self.url = (public_url or f"http://{host!s}:{port}").rstrip("/")
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.http.address[1])

    def serve_forever(self) -> None:
        lim = self.http.limits
        log.info(
            "boot server listening on %s (public URL %s; %d workers, up to %d connections, "
            "head timeout %g s, body timeout %g s)",
            self.http.address,
            self.url,
            lim.workers,
            lim.max_connections,
            lim.head_timeout_s,
            lim.body_timeout_s,
        )
        self.http.serve_forever()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="bootserver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice, or without start()."""
        self.http.shutdown()
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
        run = self.store.check_token(host, token)
        # A handoff run's token opens the RHCOS routes only (provision.install.rhcos_routes).
        return None if run is not None and run.kind == rhcos_routes.HANDOFF_RUN_KIND else run

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
            CALLBACKS.ring(run.id)  # after the commit: a woken wait_install reads it
            return 204

    # -- requests (called from the HTTP engine's worker threads) ------------------------------------
    def _handle(self, req: HttpRequest) -> Response:
        """Answer one request and log it once; any exception is a 500, never a dropped connection."""
        shown, token, host = redact(req.target), None, None
        try:
            parts, query = _route(req.target)
            token = _token(req, query)
            if req.method not in ("GET", "HEAD", "POST"):
                status, body, note = 501, b"", ""
            elif parts and parts[0] in rhcos_routes.ROUTES:
                status, body, host, note = rhcos_routes.answer(
                    self.catalog, self.store, self.url, req, parts, token, self.inspected, parse_host_keys
                )
            elif req.method == "POST":
                status, body, host, note = self._post(req, parts, token)
            elif len(parts) == 2 and parts[0] == "images":
                return self._image(req, shown, parts[1])
            elif len(parts) == 3 and parts[0] == FIRMWARE_ROUTE:
                return self._firmware(req, shown, parts[1], parts[2], token)
            else:
                status, body, host, note = self._get(parts, token)
        except ProvisionError as exc:
            status, body, note = 500, b"", f"cannot answer: {redact_text(str(exc), token)}"
        except Exception as exc:
            status, body, note = 500, b"", f"{type(exc).__name__}: {redact_text(str(exc), token)}"
        self.requests.append(Request(req.method, shown, status, host, note))
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        suffix = f" ({note})" if note else ""
        log.log(level, "%s %s %s -> %d%s", req.client, req.method, shown, status, suffix)
        return Response(status, body if status == 200 else b"")

    def _get(self, parts: list[str], token: str | None) -> tuple[int, bytes, str | None, str]:
        if len(parts) != 2 or parts[0] not in ("ipxe", "ks") or parts[1] not in self.catalog.hosts:
            return 404, b"", None, ""
        host = parts[1]
        status, text, note = self.ipxe(host, token) if parts[0] == "ipxe" else self.kickstart(host, token)
        return status, text.encode(), host, note

    def _post(
        self, req: HttpRequest, parts: list[str], token: str | None
    ) -> tuple[int, bytes, str | None, str]:
        if len(parts) != 3 or parts[0] != "callback" or parts[2] not in EVENTS:
            return 404, b"", None, ""
        host, event = parts[1], parts[2]
        if host not in self.catalog.hosts:
            return 404, b"", None, ""
        if req.body is None or len(req.body) > MAX_BODY_BYTES:  # the engine leaves big bodies unread
            return 413, b"", host, ""
        return self.callback(host, event, token, req.body.decode("utf-8", errors="replace")), b"", host, ""

    def _firmware(self, req: HttpRequest, shown: str, host: str, name: str, token: str | None) -> Response:
        """A firmware image offered to this host's BMC under this token (`firmware_images`)."""
        path, note = find_image(self.store, host, name, token) if host in self.catalog.hosts else (None, "")
        status = 200 if path is not None else 403 if host in self.catalog.hosts else 404
        self.requests.append(Request(req.method, shown, status, host if status != 404 else None, note))
        level = logging.INFO if path is not None else logging.WARNING
        log.log(level, "%s %s %s -> %d (%s)", req.client, req.method, shown, status, note or "no such host")
        return Response(status, file=path, content_type="application/octet-stream")

    def _image(self, req: HttpRequest, shown: str, name: str) -> Response:
        path = self.images_dir / name if self.images_dir is not None and IMAGE_NAME.match(name) else None
        if path is None or not path.is_file():
            self.requests.append(Request(req.method, shown, 404, None))
            log.warning("%s %s %s -> 404", req.client, req.method, shown)
            return Response(404)
        size = path.stat().st_size
        self.requests.append(Request(req.method, shown, 200, None, f"{size} bytes"))
        log.info("%s %s %s -> 200 (%d bytes)", req.client, req.method, shown, size)
        return Response(200, file=path, content_type="application/octet-stream", no_store=False)


def _route(target: str) -> tuple[list[str], dict[str, list[str]]]:
    split = urlsplit(target)
    return [p for p in split.path.split("/") if p], parse_qs(split.query)


def _token(req: HttpRequest, query: dict[str, list[str]]) -> str | None:
    auth = req.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer ") :].strip() or None
    values = query.get("token")
    return values[0] if values else None
