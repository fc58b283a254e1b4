"""Reading a Redfish tree defensively: document helpers, and a GET wrapper that turns one
resource's HTTP error, 404 or error body into a gap, skips what it has read already (a tree listing
one drive 32 times yields one), and records each part's Status. No I/O here: `fetch` is the
adapter's GET.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from burnin.hardware import HardwareInventory, PartStatus, known
from provision.bmc.types import BmcBadDocument, BmcHttpError

Doc = dict[str, Any]
Fetch = Callable[[str], Doc | None]


def ref_of(doc: Doc | None, key: str) -> str | None:
    value = (doc or {}).get(key)
    if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
        return str(value["@odata.id"])
    return None


def refs_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v["@odata.id"]) for v in value if isinstance(v, dict) and "@odata.id" in v]
    if isinstance(value, dict) and "@odata.id" in value:
        return [str(value["@odata.id"])]
    return []


def obj_of(doc: Doc, key: str) -> Doc:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def int_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*", value)
        if m:
            return int(m.group(1), 0)
    return None


def gen_of(value: Any) -> int | None:
    m = re.fullmatch(r"Gen(\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def str_of(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def ident_of(value: Any) -> str | None:
    """A serial, MAC, model or part number; None where the BMC wrote a placeholder ("N/A", zeros)."""
    return known(value) if isinstance(value, str) else None


def num_of(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def label_of(doc: Doc) -> str | None:
    """The part's printed location: Location.PartLocation.ServiceLabel (or legacy Location.Info)."""
    for key in ("Location", "PhysicalLocation"):  # Drive < 1.4 names it PhysicalLocation
        loc = obj_of(doc, key)
        label = str_of(obj_of(loc, "PartLocation").get("ServiceLabel")) or str_of(loc.get("Info"))
        if label:
            return label
    return None


def state_of(doc: Doc) -> str | None:
    status = doc.get("Status")
    return str_of(status.get("State")) if isinstance(status, dict) else None


def health_of(doc: Doc) -> str | None:
    status = doc.get("Status")
    return str_of(status.get("Health")) if isinstance(status, dict) else None


def is_error_body(doc: Any) -> bool:
    """An error served with HTTP 200 (`{"error": {...}}`, some BMCs for a part they lost)."""
    return isinstance(doc, dict) and "error" in doc and "@odata.id" not in doc


def hexid_of(value: Any) -> str | None:
    n = int_of(value)
    return None if n is None else f"0x{n:04x}"


class Reader:
    """Tolerant GETs for one inspection: an HTTP error on one resource becomes a gap in `inv`."""

    def __init__(
        self, fetch: Fetch, host_system: str | None = None, now: Callable[[], float] = time.time
    ) -> None:
        self._fetch = fetch
        self.host_system = host_system
        self.inv = HardwareInventory(source="redfish", collected_at=now())
        self.pcie_paths: list[str] = []
        self._gpu_links: dict[str, str | None] = {}
        self._slots: dict[str, str | None] = {}
        self._gpu_paths: dict[str, str] = {}  # Processor @odata.id -> Gpu.index
        self._gpu_mem: dict[str, int] = {}  # Processor @odata.id -> MiB of Memory linked to it
        self._read: set[str] = set()  # parts already taken (by @odata.id), so none is counted twice

    def get(self, path: str | None, area: str) -> Doc | None:
        """GET that turns an HTTP error, a 404 or an error body on one resource into a gap in
        `area` (so the counts there are inconclusive); a dead BMC still raises."""
        if not path:
            return None
        try:
            doc = self._fetch(path)
        except (BmcHttpError, BmcBadDocument) as exc:
            if isinstance(exc, BmcHttpError) and exc.status is None:
                raise  # no answer at all: the BMC is gone, not one resource
            self.gap(area, str(exc))
            return None
        if doc is None:
            self.gap(area, f"{path}: the BMC answered 404 for a resource it links")
        elif is_error_body(doc):
            error = doc.get("error")
            text = error.get("message") if isinstance(error, dict) else error
            self.gap(area, f"{path}: the BMC answered with an error body: {str(text)[:120]}")
            return None
        return doc

    def first(self, path: str) -> bool:
        """True the first time a part's path is taken: a part linked twice is counted once."""
        key = path.rstrip("/")
        if key in self._read:
            return False
        self._read.add(key)
        return True

    def status(self, part: str, doc: Doc, location: str | None = None) -> None:
        """Record a part's Redfish Status (State, Health, HealthRollup and the BMC's own words)."""
        status = doc.get("Status")
        if not isinstance(status, dict) or any(s.part == part for s in self.inv.health):
            return
        words = [str_of(c.get("Message")) for c in status.get("Conditions") or [] if isinstance(c, dict)]
        self.inv.health.append(
            PartStatus(
                part=part,
                location=location,
                state=str_of(status.get("State")),
                health=str_of(status.get("Health")),
                rollup=str_of(status.get("HealthRollup")),
                message="; ".join(w for w in words if w) or None,
            )
        )

    def gap(self, area: str, why: str) -> None:
        self.inv.gaps[area] = f"{self.inv.gaps[area]}; {why}" if area in self.inv.gaps else why

    def members(self, path: str | None, area: str, absent: bool = False) -> list[Doc]:
        """A collection's members, each once; `Absent` ones (empty bays) only when asked for."""
        coll = self.get(path, area)
        out = []
        for member in dict.fromkeys(refs_of((coll or {}).get("Members"))):
            doc = self.get(member, area)
            if doc is not None and (absent or state_of(doc) != "Absent"):
                out.append(doc)
        return out

    def pcie_members(self, path: str | None) -> list[str]:
        coll = self.get(path, "pcie")
        return list(dict.fromkeys(refs_of((coll or {}).get("Members"))))
