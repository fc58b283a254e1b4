"""Adapter: firmware images the boot server hands to a BMC, each behind a token of its own.

A BMC without multipart push (`MultipartHttpPushUri`) fetches its image itself (`SimpleUpdate`'s
`ImageURI`). For a local image file the controller offers it at
`<boot url>/firmware/<host>/<file name>?token=<token>`: the token is random, made for this one
update, and never stored; the run's document `firmware-image-*.json` keeps only its sha256, the
file, its size and an expiry. The offer ends when the update ends (`offer_image` closes it on the way
out, however the update went) or when the expiry passes, whichever comes first.

The boot server (`provision serve`, or the one `provision host` / `provision firmware` embeds) looks
the token up in the state store, so it answers for offers made by another process on the same state
dir. Anything else gets 403 or 404 with no content; the file is streamed, never read into memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from provision.model.errors import BadInput, ExternalError
from provision.store.lifecycle import RunStatus
from provision.store.state import StateStore

ROUTE = "firmware"
DOC = "firmware-image-"  # + the first 16 hex digits of the token's sha256
OFFER_TTL_S = 3600.0  # the update's own Task timeout: past it the update is over either way
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextmanager
def offer_image(
    store: StateStore, run_id: str, host: str, image: Path, boot_url: str, ttl_s: float = OFFER_TTL_S
) -> Iterator[str]:
    """Offer `image` to `host`'s BMC for the duration of the block; yields the URL (token inside:
    the caller passes it to the BMC and nowhere else)."""
    path = image.resolve()
    if not IMAGE_NAME.match(path.name):
        raise BadInput(
            f"{image}: expected an image file name of letters, digits and '._-' (it goes into a URL), "
            f"got {path.name!r}"
        )
    token = secrets.token_urlsafe(32)
    digest = _digest(token)
    name = f"{DOC}{digest[:16]}.json"
    doc = {
        "token_sha256": digest,
        "file": str(path),
        "name": path.name,
        "size_bytes": path.stat().st_size,
        "expires_at": time.time() + ttl_s,
        "closed": False,
    }
    store.put_document(run_id, name, doc)
    try:
        yield f"{boot_url.rstrip('/')}/{ROUTE}/{quote(host)}/{quote(path.name)}?token={token}"
    finally:
        store.put_document(run_id, name, {**doc, "closed": True})


def find_image(store: StateStore, host: str, name: str, token: str | None) -> tuple[Path | None, str]:
    """The file an open offer to `host` under `token` serves as `name`; (None, why) otherwise. The
    why goes to the log: it never holds the token."""
    if not token:
        return None, "no token"
    digest = _digest(token)
    now = time.time()
    for run in store.list_runs(host):
        if run.status is not RunStatus.running:
            continue
        for ref in store.documents(run.id):
            if not ref.name.startswith(DOC):
                continue
            doc = json.loads(store.get_document(run.id, ref.name))
            if not hmac.compare_digest(str(doc.get("token_sha256")), digest):
                continue
            if doc.get("closed") or float(doc.get("expires_at") or 0) <= now:
                return None, f"offer of run {run.id} is over"
            path = Path(str(doc.get("file")))
            if doc.get("name") != name:
                return None, f"run {run.id} offers another image"
            if not path.is_file() or path.stat().st_size != doc.get("size_bytes"):
                return None, f"run {run.id}: the image changed or is gone since it was offered"
            return path, f"firmware image, run {run.id}"
    return None, "no open offer for this token"


def check_offer(url: str, timeout_s: float = 10.0) -> None:
    """HEAD the offered URL as the BMC will GET it: a boot server that does not answer, or a foreign
    server on its address, fails here, clearly, before anything reaches the BMC."""
    shown = url.split("?", 1)[0]
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as the BMC: no proxy
    try:
        with direct.open(urllib.request.Request(url, method="HEAD"), timeout=timeout_s) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        raise ExternalError(
            f"{shown}: the boot server does not answer ({type(exc).__name__}): run `provision serve` on "
            "this state dir, or set the site's boot_server_url to an address of this machine"
        ) from None
    if status != 200:
        raise ExternalError(
            f"{shown}: the boot server at the site's boot_server_url does not serve the image (HTTP "
            f"{status}): is it `provision serve` on this state dir?"
        )


__all__ = ["OFFER_TTL_S", "ROUTE", "check_offer", "find_image", "offer_image"]
