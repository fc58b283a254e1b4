"""Who is told of every HTTP request to a BMC: (method, outcome, seconds), outcome "ok" (status <
400), "http_4xx", "http_5xx" or "transport" (no answer: refused, timed out, TLS). The controller's
metrics listen (provision.flow.metrics); nobody does otherwise, and then a request costs nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

RequestObserver = Callable[[str, str, float], None]
_observers: list[RequestObserver] = []


def observe_requests(observer: RequestObserver | None) -> None:
    """Report every BMC request from now on to `observer` (None: to nobody)."""
    _observers[:] = [observer] if observer else []


def observed(request: Callable[..., Any]) -> Callable[..., Any]:
    """`request` (a requests.Session's) reporting each call to the observer, if there is one."""

    def timed(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not _observers:
            return request(method, url, *args, **kwargs)
        started, outcome = time.monotonic(), "transport"
        try:
            response = request(method, url, *args, **kwargs)
            code = int(response.status_code)
            outcome = "ok" if code < 400 else f"http_{code // 100}xx"
            return response
        finally:
            for observe in _observers:
                observe(method.upper(), outcome, time.monotonic() - started)

    return timed
