"""The read-back judgement of a boot override, as a table: what BMCs really report after a PATCH
(and after the host has booted), and what that means."""

from __future__ import annotations

import pytest

from provision.bmc.boot_override import BootDevice, BootMode, BootRequest, Readback, judge_readback
from provision.bmc.redfish import BootState

PXE_ONCE = BootRequest(BootDevice.pxe)
PXE_KEEP = BootRequest(BootDevice.pxe, persistent=True)
CD_ONCE = BootRequest(BootDevice.cd)


def seen(
    target: str | None, enabled: str | None, mode: str | None = "UEFI", reported: bool = True
) -> BootState:
    return BootState(target, enabled, mode, None, frozenset(), reported)


@pytest.mark.parametrize(
    ("req", "state", "after_boot", "verdict", "text"),
    [
        (PXE_ONCE, seen("Pxe", "Once"), False, Readback.applied, ""),
        # Supermicro/AMI reset the mode when the target changes
        (
            PXE_ONCE,
            seen("Pxe", "Once", "Legacy"),
            False,
            Readback.mismatch,
            "mode: expected UEFI, got Legacy",
        ),
        # a BMC that does not show the mode cannot be held to it
        (PXE_ONCE, seen("Pxe", "Once", None, reported=False), False, Readback.applied, ""),
        (PXE_ONCE, seen("Hdd", "Once"), False, Readback.mismatch, "target: expected Pxe, got Hdd"),
        # right after the PATCH, Disabled means it was not applied...
        (PXE_ONCE, seen("Pxe", "Disabled"), False, Readback.mismatch, "enabled: expected Once, got Disabled"),
        # ...after the host booted, it means the one-time override was used: success
        (PXE_ONCE, seen("Pxe", "Disabled"), True, Readback.consumed, "consumed"),
        (PXE_ONCE, seen("None", None), True, Readback.consumed, "consumed"),
        # a persistent override reading Disabled after boot was lost
        (PXE_KEEP, seen("Pxe", "Disabled"), True, Readback.mismatch, "enabled: expected Continuous"),
        # sushy-emulator and some BMCs report Continuous for Once
        (PXE_ONCE, seen("Pxe", "Continuous"), False, Readback.applied, "Continuous for a one-time override"),
        (PXE_KEEP, seen("Pxe", "Once"), False, Readback.applied, "re-apply the override"),
        # Supermicro's virtual media target
        (CD_ONCE, seen("UsbCd", "Once"), False, Readback.applied, "reports target UsbCd for Cd"),
    ],
)
def test_readback_table(
    req: BootRequest, state: BootState, after_boot: bool, verdict: Readback, text: str
) -> None:
    got, notes = judge_readback(req, state, after_boot=after_boot)
    assert got is verdict
    assert text in " ".join(notes)


def test_http_boot_requires_a_uri_and_uefi() -> None:
    req = BootRequest(BootDevice.http, mode=BootMode.uefi, http_boot_uri="http://10.0.1.5/boot.efi")
    verdict, notes = judge_readback(
        req, BootState("UefiHttp", "Once", "UEFI", "http://10.0.1.9/x", frozenset(), True)
    )
    assert verdict is Readback.mismatch
    assert notes == ["HttpBootUri: expected http://10.0.1.5/boot.efi, got http://10.0.1.9/x"]
