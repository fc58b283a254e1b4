"""Boot override policy: set target + enabled + mode, read it back, and retry the known quirks.

Quirks handled (see Ironic's redfish driver): Supermicro/AMI reset BootSourceOverrideMode when the
target changes, so the mode is always sent with the target where the BMC reports it (and omitted
where it does not: other Supermicro firmware rejects it); some BMCs reject a resent, unchanged
BootSourceOverrideEnabled (400) while Supermicro wants it every time; BMCs that dropped Continuous
get Once; Dell's 409 after power-off and HPE's busy-in-POST 400 are retried by the adapter.
A consumed one-time override reads back Disabled after the host booted: that is success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from provision.bmc.types import BmcHttpError, BootState, MediaSlot
from provision.model.errors import BadInput, BmcError


class BootDevice(StrEnum):
    pxe = "pxe"
    disk = "disk"
    cd = "cd"  # virtual media
    http = "http"  # UEFI HTTP boot


class BootMode(StrEnum):
    uefi = "UEFI"
    legacy = "Legacy"


REDFISH_TARGET = {
    BootDevice.pxe: "Pxe",
    BootDevice.disk: "Hdd",
    BootDevice.cd: "Cd",
    BootDevice.http: "UefiHttp",
}
# What a BMC may report for a requested target without it being wrong.
EQUIVALENT_TARGETS = {
    "Cd": {"Cd", "UsbCd"},  # sushy maps Cd to UsbCd on Supermicro (virtual media is a USB CD there)
    "UefiHttp": {"UefiHttp", "Cd"},  # BMCs that fetch the image themselves present it as a virtual CD
}
MAX_SET_ATTEMPTS = 3


class BootBmc(Protocol):
    url: str
    system_path: str

    def boot_state(self) -> BootState: ...
    def patch_boot(
        self, *, target: str | None, enabled: str | None, mode: str | None, http_boot_uri: str | None = None
    ) -> None: ...
    def manufacturer(self) -> str: ...
    def media_slots(self) -> list[MediaSlot]: ...
    def insert_media(self, slot: str, image_url: str) -> None: ...
    def eject_media(self, slot: str) -> None: ...


@dataclass(frozen=True)
class BootRequest:
    device: BootDevice
    persistent: bool = False
    mode: BootMode = BootMode.uefi
    http_boot_uri: str | None = None
    media_url: str | None = None

    @property
    def target(self) -> str:
        return REDFISH_TARGET[self.device]

    @property
    def enabled(self) -> str:
        return "Continuous" if self.persistent else "Once"


class Readback(StrEnum):
    applied = "applied"  # the override is set as asked
    consumed = "consumed"  # a one-time override the host has already booted from
    mismatch = "mismatch"


def judge_readback(
    req: BootRequest, seen: BootState, *, after_boot: bool = False
) -> tuple[Readback, list[str]]:
    """Compare what the BMC reports with what was asked. Returns the verdict and notes/problems."""
    notes: list[str] = []
    if after_boot and not req.persistent and seen.enabled in ("Disabled", None):
        return Readback.consumed, ["one-time override consumed by the last boot (reads back Disabled)"]
    problems: list[str] = []
    if seen.target not in EQUIVALENT_TARGETS.get(req.target, {req.target}):
        problems.append(f"target: expected {req.target}, got {seen.target}")
    elif seen.target != req.target:
        notes.append(f"the BMC reports target {seen.target} for {req.target}")
    if seen.mode_reported and seen.mode != req.mode.value:
        problems.append(f"mode: expected {req.mode.value}, got {seen.mode}")
    if seen.enabled == req.enabled:
        pass
    elif seen.enabled == "Continuous" and not req.persistent:
        notes.append(
            "the BMC reports Continuous for a one-time override: it will keep this target after the "
            "next boot; set `boot disk` once installed"
        )
    elif seen.enabled == "Once" and req.persistent:
        notes.append("the BMC keeps Once instead of Continuous: re-apply the override before each power-on")
    else:
        problems.append(f"enabled: expected {req.enabled}, got {seen.enabled}")
    if req.http_boot_uri and seen.http_boot_uri not in (None, req.http_boot_uri):
        problems.append(f"HttpBootUri: expected {req.http_boot_uri}, got {seen.http_boot_uri}")
    if problems:
        return Readback.mismatch, problems
    return Readback.applied, notes


@dataclass
class BootResult:
    device: str
    target: str | None
    enabled: str | None
    mode: str | None
    http_boot_uri: str | None
    attempts: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    media: str | None = None
    ejected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_request(req: BootRequest) -> None:
    """Refuse a request that cannot be right, before anything is sent to the BMC."""
    if req.device is BootDevice.http and not req.http_boot_uri:
        raise BadInput("boot http: expected --http-boot URI, got none")
    if req.device is BootDevice.http and req.mode is not BootMode.uefi:
        raise BadInput("boot http: expected --mode uefi (HTTP boot is a UEFI feature), got legacy")
    if req.device is BootDevice.cd and not req.media_url:
        raise BadInput("boot cd: expected --virtual-media URL, got none")
    if req.media_url and req.device is not BootDevice.cd:
        raise BadInput(f"--virtual-media: expected device cd, got {req.device.value}")
    if req.http_boot_uri and req.device is not BootDevice.http:
        raise BadInput(f"--http-boot: expected device http, got {req.device.value}")


def set_boot(bmc: BootBmc, req: BootRequest, now: Callable[[], float] = time.monotonic) -> BootResult:
    start = now()
    check_request(req)
    where = f"{bmc.url}{bmc.system_path}"
    state = bmc.boot_state()
    if state.allowed_targets and not (
        EQUIVALENT_TARGETS.get(req.target, {req.target}) & state.allowed_targets
    ):
        raise BmcError(
            f"{where}: the BMC does not offer boot target {req.target} "
            f"(allowed: {', '.join(sorted(state.allowed_targets))})"
        )
    supermicro = "supermicro" in bmc.manufacturer()
    enabled = req.enabled
    send_enabled: str | None = enabled
    send_mode: str | None = req.mode.value if state.mode_reported else None
    notes: list[str] = []
    last: list[str] = []
    for attempt in range(1, MAX_SET_ATTEMPTS + 1):
        try:
            bmc.patch_boot(
                target=req.target, enabled=send_enabled, mode=send_mode, http_boot_uri=req.http_boot_uri
            )
        except BmcHttpError as exc:
            if exc.status != 400 or attempt == MAX_SET_ATTEMPTS:
                raise
            # Only a refusal that names the property is taken as that quirk; anything else (a busy
            # BMC that outlived the adapter's retries, a bad value) goes to the user as it is.
            says = exc.detail
            if (
                send_enabled is not None
                and "BootSourceOverrideEnabled" in says
                and state.enabled == enabled
                and not supermicro
            ):
                send_enabled = None  # it rejects a resent, unchanged Enabled
                notes.append("the BMC refused an unchanged BootSourceOverrideEnabled; sent without it")
            elif send_mode is not None and "BootSourceOverrideMode" in says and state.mode == send_mode:
                send_mode = None  # Supermicro firmware that rejects the mode property
                notes.append("the BMC refused BootSourceOverrideMode; sent without it")
            elif req.persistent and enabled == "Continuous" and ("Continuous" in says or "Enabled" in says):
                enabled = send_enabled = "Once"  # Continuous dropped by newer firmware
                notes.append("the BMC refused Continuous; set Once (re-apply before each power-on)")
            else:
                raise
            continue
        seen = bmc.boot_state()
        verdict, found = judge_readback(
            BootRequest(req.device, enabled == "Continuous", req.mode, req.http_boot_uri), seen
        )
        if verdict is Readback.applied:
            return BootResult(
                device=req.device.value,
                target=seen.target,
                enabled=seen.enabled,
                mode=seen.mode,
                http_boot_uri=seen.http_boot_uri,
                attempts=attempt,
                elapsed_s=round(now() - start, 3),
                notes=notes + found,
            )
        last = found
        # Supermicro/AMI: the mode fell back when the target changed. Resend all three together.
        send_enabled, send_mode = enabled, req.mode.value if seen.mode_reported else None
        state = seen
    hint = ""
    if any(p.startswith("mode:") for p in last):
        # Seen on AMI-based Supermicro firmware: only the target sticks; the mode (and Once) revert.
        hint = (
            " (the BMC does not keep the boot mode: set the mode in the BIOS settings, or use --mode legacy)"
        )
    raise BmcError(
        f"{where}: boot override did not read back as set after {MAX_SET_ATTEMPTS} attempts: "
        + "; ".join(last)
        + hint
    )


def pick_media_slot(slots: list[MediaSlot]) -> MediaSlot | None:
    for wanted in ("CD", "DVD"):
        for slot in slots:
            if wanted in (t.upper() for t in slot.media_types):
                return slot
    return slots[0] if slots else None


def boot_from_media(bmc: BootBmc, req: BootRequest, now: Callable[[], float] = time.monotonic) -> BootResult:
    """Insert the ISO URL into a CD slot (ejecting what is there first), verify, and boot once from it."""
    check_request(req)
    if not req.media_url:  # for the type checker: check_request refused it already
        raise BadInput("boot cd: expected --virtual-media URL, got none")
    start = now()
    slot = pick_media_slot(bmc.media_slots())
    if slot is None:
        raise BmcError(f"{bmc.url}{bmc.system_path}: the BMC lists no virtual media slot")
    # Eject first: Dell keeps reporting the old image for a while, and inserting over it fails.
    if slot.inserted:
        bmc.eject_media(slot.path)
    bmc.insert_media(slot.path, req.media_url)
    seen = next((s for s in bmc.media_slots() if s.path == slot.path), None)
    if seen is None or not seen.inserted:
        raise BmcError(f"{bmc.url}{slot.path}: media did not read back as inserted after InsertMedia")
    result = set_boot(bmc, BootRequest(BootDevice.cd, req.persistent, req.mode, media_url=req.media_url), now)
    result.media = req.media_url
    result.elapsed_s = round(now() - start, 3)
    return result


def eject_all(bmc: BootBmc) -> list[str]:
    ejected = []
    for slot in bmc.media_slots():
        if slot.inserted:
            bmc.eject_media(slot.path)
            ejected.append(slot.path)
    return ejected
