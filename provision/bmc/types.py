"""The BMC vocabulary shared by the Redfish adapter and the power/boot policies. Pure types.

Kept apart from `provision.bmc.redfish` so the policies (and their tests) speak in these terms without
importing sushy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from provision.model.errors import BmcError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    delay_s: float = 1.0
    max_delay_s: float = 8.0

    def delays(self) -> Iterator[float]:
        delay = self.delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


class BmcBadDocument(BmcError):
    """The BMC answered, but with a document that is not what Redfish says (not JSON, wrong shape)."""


class BmcHttpError(BmcError):
    """The BMC answered with an HTTP error that retries did not clear; `status` is its code (None when
    it did not answer at all) and `detail` the BMC's own words, apart from our message around them."""

    def __init__(self, message: str, status: int | None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class BootState:
    """The boot override as the BMC reports it now (Redfish strings, None where not reported)."""

    target: str | None
    enabled: str | None
    mode: str | None
    http_boot_uri: str | None
    allowed_targets: frozenset[str]
    mode_reported: bool  # the BMC shows BootSourceOverrideMode, so we must send it (Supermicro)


@dataclass(frozen=True)
class MediaSlot:
    path: str
    media_types: tuple[str, ...]
    inserted: bool
    image: str | None
