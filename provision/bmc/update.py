"""Adapter: one firmware update through the BMC's UpdateService (DMTF DSP0266), and the Task that
carries it followed to the end.

The image reaches the BMC by the multipart push URI (`MultipartHttpPushUri`) where the BMC offers
one and the image is a local file, else by `UpdateService.SimpleUpdate` with an http(s) `ImageURI`
the BMC fetches itself. The push is never retried by this module: a retried POST whose first try
reached the BMC would flash twice. Requests go through the project's client (`BmcClient.call`:
its auth, TLS, timeouts and error translation), as `post_action` does.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.bmc.redfish import BmcClient
from provision.bmc.types import RetryPolicy
from provision.model.errors import BadInput, BmcError

LOG = logging.getLogger(__name__)
_TOKEN = re.compile(r"(token=)[^&\s'\"]+", re.IGNORECASE)


class _RedactTokens(logging.Filter):
    """sushy logs each request's body at DEBUG: a SimpleUpdate's ImageURI carries the boot server's
    per-update token (`?token=`), which no log may hold."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "token=" in text.casefold():
            record.msg, record.args = _TOKEN.sub(r"\1<redacted>", text), ()
        return True


logging.getLogger("sushy.connector").addFilter(_RedactTokens())
ROOT = "/redfish/v1"
DONE = {"Completed", "Killed", "Exception", "Cancelled"}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class UpdateOffer:
    """What the BMC's UpdateService offers."""

    simple_update: str | None  # the SimpleUpdate action's target
    multipart_uri: str | None
    protocols: tuple[str, ...]  # TransferProtocol allowable values, where listed
    apply_times: tuple[str, ...] = ()  # SimpleUpdate's @Redfish.OperationApplyTimeSupport, where listed


@dataclass(frozen=True)
class TaskOutcome:
    state: str  # DSP0266 TaskState: Completed, Exception, Killed, Cancelled; "Unknown" past the wait
    percent: int | None
    messages: tuple[str, ...]
    task: str  # the Task's (or its monitor's) path

    @property
    def ok(self) -> bool:
        return self.state == "Completed"


def read_offer(bmc: BmcClient) -> UpdateOffer:
    root = bmc.get_json(f"{ROOT}/")
    path = (root.get("UpdateService") or {}).get("@odata.id")
    if not path:
        raise BmcError(f"{bmc.url}: the service root names no UpdateService: this BMC cannot update firmware")
    svc = bmc.get_json(path)
    action = (svc.get("Actions") or {}).get("#UpdateService.SimpleUpdate") or {}
    protocols = action.get("TransferProtocol@Redfish.AllowableValues") or []
    support = action.get("@Redfish.OperationApplyTimeSupport") or {}
    times = support.get("SupportedValues") if isinstance(support, dict) else None
    return UpdateOffer(
        simple_update=action.get("target"),
        multipart_uri=svc.get("MultipartHttpPushUri"),
        protocols=tuple(str(p) for p in protocols),
        apply_times=tuple(str(t) for t in times) if isinstance(times, list) else (),
    )


def read_version(bmc: BmcClient, path: str) -> str | None:
    """A SoftwareInventory entry's Version now; for a System target (a BMC without a
    FirmwareInventory entry for its BIOS, as sushy-emulator) its BiosVersion. None where not reported."""
    doc = bmc.get_json(path)
    version = doc.get("Version", doc.get("BiosVersion"))
    return version.strip() if isinstance(version, str) and version.strip() else None


@contextmanager
def _once(bmc: BmcClient) -> Iterator[None]:
    saved, bmc.policy = bmc.policy, RetryPolicy(attempts=1)
    try:
        yield
    finally:
        bmc.policy = saved


def _answer(resp: Any, where: str) -> str:
    """The Task (or task monitor) a 202 names: the body's Task, else the Location header. "" where
    the BMC did the update within the request (204, nothing to follow)."""
    if resp.status_code == 204 and not resp.headers.get("Location"):
        return ""
    try:
        body = resp.json() if resp.content else {}
    except ValueError:
        body = {}
    task = body.get("@odata.id") if "Task" in str(body.get("@odata.type", "")) else None
    found = task or resp.headers.get("Location")
    if not found:
        raise BmcError(
            f"{where}: the BMC accepted the update but named no Task to follow (HTTP {resp.status_code})"
        )
    return str(found)


def push(
    bmc: BmcClient, offer: UpdateOffer, image: str, targets: list[str], apply_time: str
) -> tuple[str, str]:
    """Start the update; (task path, how the image went). Local file: multipart; URL: SimpleUpdate."""
    is_url = image.startswith(("http://", "https://"))
    conn = bmc.root._conn
    if not is_url:
        path = Path(image)
        if not path.is_file():
            raise BadInput(
                f"--update: expected an image file or an http(s) URL, got {image!r} (no such file)"
            )
        if offer.multipart_uri is None:  # the caller offers a local file through the boot server
            raise BadInput(
                f"{bmc.url}: the BMC offers no multipart push (MultipartHttpPushUri): give the image "
                "as an http(s) URL it can fetch (SimpleUpdate)"
            )
        uri = offer.multipart_uri
        params = json.dumps({"Targets": targets, "@Redfish.OperationApplyTime": apply_time})
        with path.open("rb") as fh, _once(bmc):
            files = {
                "UpdateParameters": (None, params, "application/json"),
                "UpdateFile": (path.name, fh, "application/octet-stream"),
            }
            resp = bmc.call("multipart push", lambda: conn.post(path=uri, files=files), where=uri)
        return _answer(resp, f"{bmc.url}{uri}"), "multipart"
    if offer.simple_update is None:
        raise BmcError(f"{bmc.url}: the UpdateService offers no SimpleUpdate action")
    if offer.apply_times and apply_time not in offer.apply_times:
        raise BadInput(
            f"--apply-time: expected one of {', '.join(offer.apply_times)} (the BMC's SimpleUpdate "
            f"OperationApplyTimeSupport), got {apply_time}"
        )
    target = offer.simple_update
    body: dict[str, Any] = {"ImageURI": image, "Targets": targets, "@Redfish.OperationApplyTime": apply_time}
    scheme = image.split(":", 1)[0].upper()
    if not offer.protocols or scheme in offer.protocols:
        body["TransferProtocol"] = scheme
    with _once(bmc):
        resp = bmc.call("SimpleUpdate", lambda: conn.post(path=target, data=body), where=target)
    return _answer(resp, f"{bmc.url}{target}"), "SimpleUpdate"


def follow(
    bmc: BmcClient,
    task: str,
    timeout_s: float,
    poll_s: float = 1.0,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
) -> TaskOutcome:
    """Poll the Task until it ends (DSP0266 TaskState) or `timeout_s` passes; say each new percent."""
    deadline = now() + timeout_s
    seen: int | None = -1
    doc: dict[str, Any] = {}
    while True:
        doc = bmc.get_json(task)
        state = str(doc.get("TaskState") or "Unknown")
        pct = doc.get("PercentComplete") if isinstance(doc.get("PercentComplete"), int) else None
        if progress is not None and pct != seen:
            progress(f"task {task}: {state}" + (f", {pct}%" if pct is not None else ""))
            seen = pct
        if state in DONE:
            break
        if now() >= deadline:
            state = "Unknown"
            break
        sleep(poll_s)
    messages = tuple(
        str(m.get("Message") or m.get("MessageId")) for m in doc.get("Messages") or [] if isinstance(m, dict)
    )
    return TaskOutcome(state, pct, messages, task)
