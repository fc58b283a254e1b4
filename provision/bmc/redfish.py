"""Adapter: the one module that imports sushy. Connects to a host's BMC and offers bounded, retried
calls (raw GETs for inspection, power actions, boot overrides, virtual media) in the project's own
types. Every failure leaves as BmcError naming the URL; no sushy object or exception escapes.

Timeouts and retries are explicit (the host's `bmc` block): sushy itself is told to try once, and
`RetryPolicy` retries only what is transient (transport errors, 5xx, 409, "busy" 400s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sushy
from sushy import exceptions as sx

from provision.bmc.cache import DEFAULT_WORKERS, ResourceCache
from provision.bmc.credentials import Credentials, read_credentials
from provision.bmc.requestlog import observed
from provision.bmc.types import BmcBadDocument, BmcHttpError, BootState, MediaSlot, RetryPolicy
from provision.model.errors import BadInput, BmcError
from provision.model.files import FileRefused, check_regular
from provision.model.hosts import Bmc, BmcAuth

__all__ = [
    "BmcClient",
    "BmcHttpError",
    "BootState",
    "Credentials",
    "MediaSlot",
    "connect",
    "read_credentials",
]

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class _QuietSessionGuess(logging.Filter):
    """sushy warns on every connect to a BMC without a SessionService (sushy-emulator, older
    firmware) before falling back to Basic auth, which is the documented, expected path."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Could not discover the Session service path" not in record.getMessage()


logging.getLogger("sushy.main").addFilter(_QuietSessionGuess())

# Messages that mean "the BMC is busy, ask again" rather than "no": iDRAC job queue, iLO during POST,
# Dell's 409 for about a minute after a power-off.
BUSY_MARKERS = (
    "SYS518",
    "UnableToModifyDuringSystemPOST",
    "InvalidOperationForSystemState",
    "ActionParameterValueConflict",
)


# What requests' nested messages mean, said first so the line is readable before it is truncated.
TRANSPORT_CAUSES = (
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted (bmc.verify_tls: a CA bundle path?)"),
    ("SSL", "TLS handshake failed"),
    ("Connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("Name or service not known", "host name does not resolve"),
    ("Connection reset", "connection reset by the BMC"),
    ("RemoteDisconnected", "the BMC closed the connection without answering"),
)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def is_transient(exc: BaseException) -> bool:
    """Worth another try: the network dropped, the BMC answered 5xx/409, or it said it is busy."""
    if isinstance(exc, sx.ConnectionError):
        return "SSL" not in str(exc)  # a certificate problem will not fix itself
    code = _status(exc)
    if code is not None and (code >= 500 or code in (409, 429)):
        return True
    return code == 400 and any(m in str(exc) for m in BUSY_MARKERS)


def describe(exc: BaseException) -> str:
    """One line for a person: the HTTP status and the BMC's message, without sushy's noise."""
    code = _status(exc)
    if isinstance(exc, sx.HTTPError):
        detail = f"{exc.code}: {exc.detail}" if exc.detail else "the BMC sent no Redfish error body"
    elif isinstance(exc, sx.ConnectionError):
        raw = str(exc)
        cause = next((says for marker, says in TRANSPORT_CAUSES if marker in raw), None)
        detail = f"{cause} ({raw})" if cause else raw
    else:
        detail = str(exc)
    text = " ".join(str(detail).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"HTTP {code}: {text}" if code else text


class BmcClient:
    """A connected BMC. Use `connect(bmc)`; calls go through `call`, which retries and translates."""

    def __init__(
        self,
        bmc: Bmc,
        credentials: Credentials,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bmc = bmc
        self.url = bmc.url
        self.policy = policy or RetryPolicy(bmc.attempts, bmc.retry_delay_s)
        self._credentials = credentials
        self._sleep = sleep
        self._root: Any = None
        self._system: Any = None
        self.system_path: str = bmc.system or ""
        self.retries = 0  # transient faults retried so far, reported by the commands

    # -- plumbing ------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T], *, where: str = "") -> T:
        """Run one BMC operation with the retry policy; anything else becomes BmcError."""
        target = f"{self.url}{where}"
        delays = self.policy.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except sx.SushyError as exc:
                if is_transient(exc):
                    delay = next(delays, None)
                    if delay is not None:
                        self.retries += 1
                        LOG.info(
                            "%s: %s: %s; retry %d in %.1f s", target, what, describe(exc), attempt, delay
                        )
                        self._sleep(delay)
                        continue
                detail = describe(exc)
                raise BmcHttpError(
                    f"{target}: {what} failed after {attempt} attempt(s): {detail}", _status(exc), detail
                ) from None
            except (ValueError, KeyError, TypeError) as exc:
                # sushy's parsers (and JSON decoding) raise these on malformed documents
                raise BmcBadDocument(f"{target}: {what}: unexpected answer from the BMC: {exc}") from None

    def _verify(self) -> bool | str:
        verify = self.bmc.verify_tls
        if verify is False:
            LOG.warning(
                "TLS verification is OFF for %s (hosts.yaml bmc.verify_tls: false): "
                "the BMC's identity is not checked and its credentials could be intercepted",
                self.url,
            )
            return False
        if isinstance(verify, str):
            if not Path(verify).exists():
                raise BadInput(f"bmc.verify_tls: expected a CA bundle file, got {verify!r} (no such file)")
            try:
                check_regular(Path(verify))  # the TLS library would block on a FIFO, read /dev/zero forever
            except FileRefused as exc:
                raise BadInput(
                    f"bmc.verify_tls: expected a CA bundle file, got {verify!r} ({exc.got})"
                ) from None
            return verify
        return True

    def _auth(self) -> Any:
        user, password = self._credentials.user, self._credentials.password
        if self.bmc.auth is BmcAuth.basic:
            return sushy.auth.BasicAuth(user, password)
        if self.bmc.auth is BmcAuth.session:
            return sushy.auth.SessionAuth(user, password)
        return sushy.auth.SessionOrBasicAuth(user, password)

    def open(self) -> None:
        verify = self._verify()

        def build() -> Any:
            # one attempt each inside sushy; our RetryPolicy owns the retries
            connector = sushy.connector.Connector(
                self.url,
                verify=verify,
                server_side_retries=1,
                server_side_retries_delay=0,
                default_request_timeout=self.bmc.read_timeout_s,
                connect_timeout=self.bmc.connect_timeout_s,
            )
            session = connector._session
            # requests reads the proxy variables (and REQUESTS_CA_BUNDLE) on every request, scanning
            # all of os.environ twice: a quarter of the controller's CPU in a fleet (bench/fleet.py).
            # Read them once per connection, as requests would for this URL, and not again.
            env = session.merge_environment_settings(self.url, {}, None, verify, None)
            session.proxies, session.verify, session.trust_env = env["proxies"], env["verify"], False
            session.request = observed(session.request)  # metrics
            return sushy.Sushy(self.url, auth=self._auth(), verify=verify, connector=connector)

        try:
            self._root = self.call("connect", build, where="/redfish/v1/")
        except BmcHttpError as exc:
            if self.bmc.auth is BmcAuth.session and exc.status == 404:
                raise BmcHttpError(
                    f"{exc} (bmc.auth: session, but the BMC has no SessionService: use auto or basic)",
                    404,
                    exc.detail,
                ) from None
            raise

    def close(self) -> None:
        root, self._root, self._system = self._root, None, None
        if root is not None:
            # sushy ends its Redfish session in its destructor (and logs, never raises, on failure);
            # calling it now deletes the session on the BMC before the command exits.
            root.__del__()

    @property
    def root(self) -> Any:
        if self._root is None:
            raise BmcError(f"{self.url}: not connected")
        return self._root

    # -- raw reads (inspection) ------------------------------------------------------------------

    # sushy has no DIMM class and its Storage/PCIe parsers break on newer schemas, so inspection reads
    # raw documents through sushy's own connector (`_conn`: its auth, session, TLS and timeouts).

    def get_json(self, path: str) -> dict[str, Any]:
        """GET one resource as a dict. 404 -> BmcError too: callers that tolerate it use `try_json`."""

        def get() -> dict[str, Any]:
            data = self.root._conn.get(path=path).json()
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            return data

        return self.call("GET", get, where=path)

    def try_json(self, path: str, missing: tuple[int, ...] = (404, 405, 501)) -> dict[str, Any] | None:
        """GET, or None where the BMC answers one of `missing` (a part it does not implement)."""

        def get() -> dict[str, Any] | None:
            try:
                data = self.root._conn.get(path=path).json()
            except sx.HTTPError as exc:
                if _status(exc) in missing:
                    return None
                raise
            return data if isinstance(data, dict) else None

        return self.call("GET", get, where=path)

    def resources(self, *, expand: bool | None = None, workers: int = DEFAULT_WORKERS) -> ResourceCache:
        """The fetch for one inspection: each resource asked for once, `$expand` where the service
        root offers it, at most `workers` GETs in flight. Starts from the root read at connect."""

        def get(path: str) -> dict[str, Any] | None:
            # A query the BMC refuses (405/501) must reach the cache as a refusal, not as "no such part".
            return self.try_json(path, (404,)) if "?" in path else self.try_json(path)

        root = self.root.json
        return ResourceCache(
            get, root=root if isinstance(root, dict) else None, expand=expand, workers=workers
        )

    def post_action(self, target: str, body: dict[str, Any]) -> None:
        """POST a Redfish action (LogService.ClearLog, ...) to the target the resource names."""
        self.call(f"POST {target}", lambda: self.root._conn.post(path=target, data=body), where=target)

    # -- the system ------------------------------------------------------------------------------

    def system_paths(self) -> list[str]:
        def members() -> list[str]:
            return list(self.root.get_system_collection().members_identities)

        return self.call("list systems", members, where="/redfish/v1/Systems")

    def system(self, refresh: bool = True) -> Any:
        """The managed sushy System; defaults to the only one (or the first that has Boot)."""
        if self._system is None:
            if not self.system_path:
                paths = self.system_paths()
                if not paths:
                    raise BmcError(f"{self.url}/redfish/v1/Systems: the BMC lists no systems")
                self.system_path = self._pick_host_system(paths)
            self._system = self.call(
                "read system", lambda: self.root.get_system(self.system_path), where=self.system_path
            )
        elif refresh:
            self.call("read system", self._system.refresh, where=self.system_path)
        return self._system

    def _pick_host_system(self, paths: list[str]) -> str:
        if len(paths) == 1:
            return paths[0]
        # A GPU baseboard is its own System without Boot; the host is the one that boots.
        for path in paths:
            doc = self.get_json(path)
            if isinstance(doc.get("Boot"), dict):
                return path
        return paths[0]

    def manufacturer(self) -> str:
        return str(self.system(refresh=False).manufacturer or "").strip().lower()

    # -- power -----------------------------------------------------------------------------------

    def power_state(self) -> str | None:
        state = self.system().power_state
        return None if state is None else str(state.value)

    def allowed_resets(self) -> set[str]:
        system = self.system(refresh=False)
        return {str(v.value) for v in self.call("read reset types", system.get_allowed_reset_system_values)}

    def reset(self, reset_type: str) -> None:
        system = self.system(refresh=False)
        value = sushy.ResetType(reset_type)
        self.call(f"reset {reset_type}", lambda: system.reset_system(value), where=self.system_path)

    # -- boot ------------------------------------------------------------------------------------

    def boot_state(self) -> BootState:
        system = self.system()
        boot = system.boot
        if boot is None:
            raise BmcError(f"{self.url}{self.system_path}: the system has no Boot property to override")
        raw = system.json.get("Boot") or {}
        allowed = {str(getattr(v, "value", v)) for v in (boot.allowed_values or ())}
        return BootState(
            target=None if boot.target is None else str(boot.target.value),
            enabled=None if boot.enabled is None else str(boot.enabled.value),
            mode=None if boot.mode is None else str(boot.mode.value),
            # some services render an unset URI as the string "None"
            http_boot_uri=boot.http_boot_uri if boot.http_boot_uri not in (None, "", "None") else None,
            allowed_targets=frozenset(allowed),
            mode_reported="BootSourceOverrideMode" in raw,
        )

    def patch_boot(
        self,
        *,
        target: str | None,
        enabled: str | None,
        mode: str | None,
        http_boot_uri: str | None = None,
    ) -> None:
        """One PATCH of exactly the properties given (None: omitted)."""
        system = self.system(refresh=False)
        kwargs: dict[str, Any] = {}
        if target is not None:
            kwargs["target"] = sushy.BootSource(target)
        if enabled is not None:
            kwargs["enabled"] = sushy.BootSourceOverrideEnabled(enabled)
        if mode is not None:
            kwargs["mode"] = sushy.BootSourceOverrideMode(mode)
        if http_boot_uri is not None:
            kwargs["http_boot_uri"] = http_boot_uri
        self.call(
            f"set boot override {kwargs_text(kwargs)}",
            lambda: system.set_system_boot_options(**kwargs),
            where=self.system_path,
        )

    # -- virtual media ---------------------------------------------------------------------------

    def _media_collection(self) -> Any:
        system = self.system(refresh=False)
        try:
            return system.virtual_media
        except sx.MissingAttributeError:
            # Older layouts hang virtual media off the Manager. Runs inside the caller's `call`.
            for manager in list(system.managers):
                try:
                    return manager.virtual_media
                except sx.MissingAttributeError:
                    continue
        return None

    def media_slots(self) -> list[MediaSlot]:
        def read() -> list[MediaSlot]:
            slots: list[MediaSlot] = []
            collection = self._media_collection()
            for media in collection.get_members() if collection is not None else ():
                media.refresh(force=True)  # sushy caches members; a read-back must be fresh
                slots.append(
                    MediaSlot(
                        path=media.path,
                        media_types=tuple(str(getattr(t, "value", t)) for t in (media.media_types or ())),
                        inserted=bool(media.inserted),
                        image=media.image,
                    )
                )
            return slots

        return self.call("read virtual media", read, where=self.system_path)

    def _media(self, slot: str) -> Any:
        collection = self._media_collection()
        if collection is None:
            raise BmcError(f"{self.url}{self.system_path}: the BMC offers no virtual media")
        return collection.get_member(slot)

    def insert_media(self, slot: str, image_url: str) -> None:
        def insert() -> None:
            self._media(slot).insert_media(image_url, inserted=True, write_protected=True)

        self.call(f"insert {image_url}", insert, where=slot)

    def eject_media(self, slot: str) -> None:
        self.call("eject", lambda: self._media(slot).eject_media(), where=slot)


def kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={getattr(v, 'value', v)}" for k, v in kwargs.items())


@contextmanager
def connect(bmc: Bmc, *, credentials: Credentials | None = None) -> Iterator[BmcClient]:
    client = BmcClient(bmc, credentials or read_credentials(bmc.credentials))
    client.open()
    try:
        yield client
    finally:
        client.close()
