"""One inspection's view of a BMC's resources: each resource is asked for at most once, and where the
service offers `$expand` (DSP0266 ExpandQuery), a collection arrives with its members in one request.

The walker (`provision.bmc.inventory`) calls `fetch(path)` as it would call the adapter's GET and sees
the same documents either way: what an expanded answer embeds is cached under its own `@odata.id`,
and the document handed back has every embedded resource folded back into a plain reference.

No sockets here: the cache is handed the adapter's `get(path) -> dict | None` (None for 404). It
may prefetch a collection's members on a small pool of threads (a BMC serves few sessions and
answers in 0.2-2 s a request); the pool is per cache, so per BMC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import Any

from provision.bmc.types import BmcHttpError

Doc = dict[str, Any]
Get = Callable[[str], Doc | None]

ROOT = "/redfish/v1"
EXPAND = "$expand=.($levels=1)"  # the resource and what it links outside `Links`, one level down
NOT_EXPANDED = (400, 405, 406, 501)  # a service that advertises ExpandQuery but refuses it
DEFAULT_WORKERS = 4
# The service's own collections are not prefetched: a BMC fronting many nodes lists them all there,
# and an inspection reads only the host's (the System bmc.system names, its Chassis and Managers).
TOP_LEVEL = {f"{ROOT}/Systems", f"{ROOT}/Chassis", f"{ROOT}/Managers"}


def key_of(path: str) -> str:
    """The cache key: the path without a trailing slash ("/redfish/v1/" and "/redfish/v1" are one);
    a query the BMC put in a link (a `Members@odata.nextLink` page) is part of it."""
    base, sep, query = path.partition("?")
    return (base.rstrip("/") or "/") + sep + query


def expand_supported(root: Doc | None) -> bool:
    """`.($levels=1)` needs both NoLinks (the `.` option) and Levels."""
    features = (root or {}).get("ProtocolFeaturesSupported")
    query = features.get("ExpandQuery") if isinstance(features, dict) else None
    return isinstance(query, dict) and query.get("NoLinks") is True and query.get("Levels") is True


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"@odata.id"} and isinstance(value["@odata.id"], str)


def _resource_id(value: Any) -> str | None:
    """The id of an embedded resource: an object with `@odata.id` and more, not a fragment (`#/...`)."""
    if not isinstance(value, dict) or len(value) < 2:
        return None
    rid = value.get("@odata.id")
    return rid if isinstance(rid, str) and "#" not in rid else None


def _shallow(doc: Doc) -> bool:
    """An embedded resource that still links (outside `Links`) to a list of resources it did not bring
    along (a collection's Members, a Storage's Drives): asked for on its own, the expanded answer
    brings them in the same request, so it is not cached from an embedding."""
    for key, value in doc.items():
        if key == "Links" or key.startswith("@"):
            continue
        if isinstance(value, list) and value and all(_is_ref(v) for v in value):
            return True
    return False


def _harvest(doc: Doc, found: dict[str, Doc]) -> Doc:
    """Fold the children of a top-level document (the document itself keeps its own body)."""
    out: Doc = {}
    for key, value in doc.items():
        out[key] = value if key.startswith("@") else _fold_child(value, found)
    return out


def _fold_child(node: Any, found: dict[str, Doc]) -> Any:
    if isinstance(node, list):
        return [_fold_child(v, found) for v in node]
    if not isinstance(node, dict):
        return node
    rid = _resource_id(node)
    body = _harvest(node, found)
    if rid is None:
        return body
    if not _shallow(body):
        found.setdefault(key_of(rid), body)
    return {"@odata.id": rid}


def _resolve(future: Future[Doc | None], doc: Doc | None, exc: BaseException | None = None) -> None:
    """Settle a resource once: an embedded copy and its own GET may race; the first one stands."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(doc)
    except InvalidStateError:
        pass


class ResourceCache:
    """`fetch(path)` for one inspection: one GET per resource at most, `$expand` where offered.

    `root`: the service root the adapter already read when it connected (not asked for again).
    `expand`: None to follow the root's ProtocolFeaturesSupported; False never to expand.
    `workers`: how many GETs may be in flight to this BMC at once (1: strictly one after another).
    """

    def __init__(
        self,
        get: Get,
        *,
        root: Doc | None = None,
        expand: bool | None = None,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers: expected at least 1, got {workers}")
        self._get = get
        self._lock = threading.Lock()
        self._docs: dict[str, Future[Doc | None]] = {}
        self._expand = expand
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0  # GETs sent, for the bench and the tests
        if root is not None:
            self._settle(key_of(f"{ROOT}/"), root)
            if self._expand is None:
                self._expand = expand_supported(root)

    @property
    def expanding(self) -> bool:
        return bool(self._expand)

    def __call__(self, path: str) -> Doc | None:
        key = key_of(path)
        with self._lock:
            future = self._docs.get(key)
            owner = future is None
            if future is None:
                future = self._docs[key] = Future()
        if owner:
            self._load(key, future)
        return future.result()

    def __enter__(self) -> ResourceCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- internals -----------------------------------------------------------------------------

    def _settle(self, key: str, doc: Doc | None) -> None:
        with self._lock:
            future = self._docs.setdefault(key, Future())
        _resolve(future, doc)

    def _send(self, path: str) -> Doc | None:
        with self._lock:
            self.requests += 1
        return self._get(path)

    def _load(self, key: str, future: Future[Doc | None]) -> None:
        try:
            doc = self._read(key)
        except BaseException as exc:  # handed to whoever waits on this resource, then re-raised there
            _resolve(future, None, exc)
            return
        _resolve(future, doc)

    def _read(self, key: str) -> Doc | None:
        if key == ROOT and self._expand is None:
            doc = self._send(f"{ROOT}/")
            self._expand = expand_supported(doc)
            return doc
        if self._expand is None:
            self(ROOT)  # learn whether the service expands before the first other GET
        if not self._expand or key == ROOT or "?" in key:  # a page link: asked for as the BMC wrote it
            doc = self._send(key if key != ROOT else f"{ROOT}/")
            if doc is not None and self._workers > 1 and key not in TOP_LEVEL:
                self._prefetch(doc)
            return doc
        try:
            doc = self._send(f"{key}?{EXPAND}")
        except BmcHttpError as exc:
            if exc.status not in NOT_EXPANDED:
                raise
            self._expand = False  # advertised, but refused: ask plainly from now on
            return self._read(key)
        if doc is None:
            return None
        found: dict[str, Doc] = {}
        plain = _harvest(doc, found)
        for rid, body in found.items():
            if rid != key:
                self._settle(rid, body)
        return plain

    def _prefetch(self, doc: Doc) -> None:
        """Without $expand: a collection's members, fetched on the pool while the walker reads on."""
        members = doc.get("Members")
        if not isinstance(members, list):
            return
        wanted = [key_of(m["@odata.id"]) for m in members if _is_ref(m)]
        with self._lock:
            wanted = [k for k in dict.fromkeys(wanted) if k not in self._docs]
            for k in wanted:
                self._docs[k] = Future()
            if wanted and self._pool is None:
                # The walker's own thread is one of the `workers`.
                self._pool = ThreadPoolExecutor(self._workers - 1, thread_name_prefix="redfish-get")
            pool = self._pool
        for k in wanted:
            if pool is not None:
                pool.submit(self._load, k, self._docs[k])
