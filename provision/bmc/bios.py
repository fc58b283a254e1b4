"""Adapter: a host's BIOS attributes through Redfish. Reads the Bios resource, its pending Settings
object and the AttributeRegistry it names (when the BMC offers one); PATCHes the Settings object.

Raw documents stay here: what leaves is `BiosState` and `RegistryEntry`. A BMC without a Bios
resource gives `None` (the caller makes that an inconclusive finding), never an exception.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Protocol

import sushy.exceptions as sx

from provision.bmc.reader import obj_of, ref_of, refs_of, str_of
from provision.bmc.types import BmcHttpError
from provision.model.bios import EVIDENCE_ID, RegistryEntry
from provision.model.errors import BmcError


class BiosBmc(Protocol):
    """What this adapter needs of provision.bmc.redfish.BmcClient."""

    url: str
    system_path: str

    def system(self, refresh: bool = True) -> Any: ...
    def get_json(self, path: str) -> dict[str, Any]: ...
    def try_json(self, path: str, missing: tuple[int, ...] = (404, 405, 501)) -> dict[str, Any] | None: ...
    def call(self, what: str, fn: Any, *, where: str = "") -> Any: ...

    @property
    def root(self) -> Any: ...


@dataclass(frozen=True)
class BiosState:
    """The BIOS as the BMC reports it now."""

    path: str  # the Bios resource
    settings_path: str  # where changes are PATCHed (@Redfish.Settings, or the Bios resource itself)
    manufacturer: str | None
    attributes: dict[str, Any]
    pending: dict[str, Any] = field(default_factory=dict)  # Settings values that differ from current
    registry_name: str | None = None
    registry: dict[str, RegistryEntry] | None = None  # None: the BMC offers none
    registry_gap: str | None = None  # why the registry named could not be read
    settings_etag: str | None = None  # the Settings object's ETag (header or @odata.etag): If-Match
    apply_times: tuple[str, ...] = ()  # SettingsApplyTime values the BMC advertises (SupportedApplyTimes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "settings_path": self.settings_path,
            "manufacturer": self.manufacturer,
            "attributes": dict(self.attributes),
            "pending": dict(self.pending),
            "registry": self.registry_name,
            "registry_read": self.registry is not None,
            "registry_gap": self.registry_gap,
            "etag": self.settings_etag is not None,
            "apply_times": list(self.apply_times),
        }


def _entry(doc: dict[str, Any]) -> RegistryEntry | None:
    name = str_of(doc.get("AttributeName"))
    if name is None:
        return None
    values = tuple(
        str(v["ValueName"]) for v in doc.get("Value") or () if isinstance(v, dict) and "ValueName" in v
    )
    lower, upper = doc.get("LowerBound"), doc.get("UpperBound")
    return RegistryEntry(
        name=name,
        type=str_of(doc.get("Type")),
        values=values,
        read_only=doc.get("ReadOnly") is True,
        immutable=doc.get("Immutable") is True,
        lower=lower if isinstance(lower, int) and not isinstance(lower, bool) else None,
        upper=upper if isinstance(upper, int) and not isinstance(upper, bool) else None,
    )


def parse_registry(doc: dict[str, Any]) -> dict[str, RegistryEntry]:
    entries = obj_of(doc, "RegistryEntries").get("Attributes") or []
    out: dict[str, RegistryEntry] = {}
    for raw in entries if isinstance(entries, list) else []:
        entry = _entry(raw) if isinstance(raw, dict) else None
        if entry is not None:
            out[entry.name] = entry
    return out


def _registry(bmc: BiosBmc, name: str) -> tuple[dict[str, RegistryEntry] | None, str | None]:
    """The AttributeRegistry whose Id is `name`, found through the service's Registries collection
    (each registry file's Location); (None, why) when the BMC does not serve it."""
    root = bmc.try_json("/redfish/v1/")
    coll_path = ref_of(root, "Registries")
    coll = bmc.try_json(coll_path) if coll_path else None
    if coll is None:
        return None, "the BMC offers no Registries collection"
    stem = name.split(".")[0].casefold()

    def likely(path: str) -> int:
        tail = path.rstrip("/").rsplit("/", 1)[-1].casefold()
        return 0 if tail == name.casefold() else 1 if stem in tail or "attribute" in tail else 2

    # Files are read in order of how likely they are to be it; a BMC lists dozens of message registries.
    for path in sorted(refs_of(coll.get("Members")), key=likely):
        f = bmc.try_json(path)
        if not f:
            continue
        label = f"{f.get('Id', '')} {f.get('Registry', '')}".casefold()
        named = name in (f.get("Id"), f.get("Registry"))
        if not named and "attribute" not in label and stem not in label:
            continue
        locations = [loc for loc in f.get("Location") or () if isinstance(loc, dict)]
        locations.sort(key=lambda loc: 0 if str(loc.get("Language", "en")).startswith("en") else 1)
        for loc in locations:
            uri = str_of(loc.get("Uri"))
            doc = bmc.try_json(uri) if uri else None
            if doc and (doc.get("Id") == name or named):
                return parse_registry(doc), None
    return None, f"no registry file of the BMC's Registries serves {name}"


def _settings(bmc: BiosBmc, path: str) -> tuple[dict[str, Any], str | None]:
    """The Settings object and its ETag (the `ETag` header, else `@odata.etag`); ({}, None) where
    the BMC does not serve it."""

    def get() -> tuple[dict[str, Any], str | None]:
        try:
            resp = bmc.root._conn.get(path=path)
        except sx.HTTPError as exc:
            if exc.status_code in (404, 405, 501):
                return {}, None
            raise
        doc = resp.json()
        doc = doc if isinstance(doc, dict) else {}
        return doc, str_of(resp.headers.get("ETag")) or str_of(doc.get("@odata.etag"))

    result: tuple[dict[str, Any], str | None] = bmc.call("GET", get, where=path)
    return result


def _apply_times(bios: dict[str, Any], settings: dict[str, Any]) -> tuple[str, ...]:
    """DSP0266 `SupportedApplyTimes` of the Bios resource's `@Redfish.Settings`; a Settings object
    that shows `@Redfish.SettingsApplyTime` takes one too (iDRAC shows it without the list)."""
    listed = obj_of(bios, "@Redfish.Settings").get("SupportedApplyTimes")
    times = tuple(str(t) for t in listed) if isinstance(listed, list) else ()
    return times or (("OnReset",) if "@Redfish.SettingsApplyTime" in settings else ())


def bios_path(bmc: BiosBmc) -> tuple[str | None, str | None]:
    """The Bios resource of the managed System, and the System's Manufacturer."""
    bmc.system(refresh=False)  # resolves the System path (the one that boots, on multi-System BMCs)
    doc = bmc.get_json(bmc.system_path)
    return ref_of(doc, "Bios"), str_of(doc.get("Manufacturer"))


def read_bios(bmc: BiosBmc, *, registry: bool = True) -> BiosState | None:
    """The BIOS attributes now (None when the System links no Bios resource)."""
    path, manufacturer = bios_path(bmc)
    if path is None:
        return None
    doc = bmc.try_json(path)
    if doc is None:
        return None
    attributes = doc.get("Attributes")
    if not isinstance(attributes, dict):
        raise BmcError(f"{bmc.url}{path}: the Bios resource has no Attributes object")
    settings_path = ref_of(obj_of(doc, "@Redfish.Settings"), "SettingsObject") or path
    pending: dict[str, Any] = {}
    sdoc, etag = _settings(bmc, settings_path) if settings_path != path else ({}, None)
    future = sdoc.get("Attributes")
    if isinstance(future, dict):
        pending = {k: v for k, v in future.items() if k not in attributes or attributes[k] != v}
    name = str_of(doc.get("AttributeRegistry"))
    entries: dict[str, RegistryEntry] | None = None
    gap: str | None = None
    if registry and name:
        entries, gap = _registry(bmc, name)
    return BiosState(
        path=path,
        settings_path=settings_path,
        manufacturer=manufacturer,
        attributes=dict(attributes),
        pending=pending,
        registry_name=name,
        registry=entries,
        registry_gap=gap,
        settings_etag=etag,
        apply_times=_apply_times(doc, sdoc),
    )


def patch_bios(bmc: BiosBmc, state: BiosState, changes: dict[str, Any]) -> None:
    """One PATCH of `changes` to the Settings object; the BIOS applies them at its next reset.

    Where the Settings object has an ETag it goes in `If-Match` (iLO and iDRAC refuse a PATCH
    without it, and it keeps two writers from mixing their changes): on 412 the object is read again
    and the PATCH sent once more with the new ETag, then it fails. `@Redfish.SettingsApplyTime`
    OnReset is sent where the BMC advertises it (iDRAC schedules the change as a job by it)."""
    if not changes:
        return
    target = state.settings_path
    body: dict[str, Any] = {"Attributes": dict(changes)}
    if "OnReset" in state.apply_times:
        body["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
    what = f"PATCH BIOS attributes {', '.join(sorted(changes))}"
    etag = state.settings_etag
    for attempt in (1, 2):
        sent = etag
        # If-Match as a header, not sushy's `etag=`: on 412 sushy retries with the ETag made strong,
        # then with none at all, which would overwrite the other writer's changes.
        headers = {"If-Match": sent} if sent else None
        send = functools.partial(bmc.root._conn.patch, path=target, data=body, headers=headers)
        try:
            bmc.call(what, send, where=target)
            return
        except BmcHttpError as exc:
            if exc.status != 412 or sent is None:
                raise
            if attempt == 2:
                raise BmcError(
                    f"{bmc.url}{target}: {what}: the BMC refused it twice as changed meanwhile (HTTP 412 "
                    f"Precondition Failed on If-Match {sent}): another client is writing the BIOS "
                    "settings; nothing was changed, run it again when that one is done"
                ) from None
            etag = _settings(bmc, target)[1]  # read again: the next try carries the new ETag


__all__ = [
    "EVIDENCE_ID",
    "BiosState",
    "RegistryEntry",
    "bios_path",
    "parse_registry",
    "patch_bios",
    "read_bios",
]
