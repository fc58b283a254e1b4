"""Pre-OS (Redfish) and in-OS views of the same host, compared part by part.

Parts are matched by identity (serial, WWN, MAC), never by slot names, which the BMC and the OS
spell differently. A part one side sees and the other does not is a failure: a DIMM the BMC lists
but the OS does not use is exactly the fault this exists to catch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from burnin.hardware import HardwareInventory, known, normalize_wwn
from burnin.schema import Finding, Verdict
from provision.acceptance.validation.common import finding

T = TypeVar("T")


def _norm(text: str | None) -> str | None:
    """An identity to match on; a placeholder ("N/A", a serial of zeros) is none, never a match."""
    value = known(text)
    return value.upper() if value else None


def _match(
    kind: str,
    pre: Sequence[T],
    inos: Sequence[T],
    key: Callable[[T], str | None],
    label: Callable[[T], str],
    bmc_gap: str | None = None,
) -> list[Finding]:
    if bmc_gap is not None and not any(key(p) for p in pre):
        # The BMC does not expose these parts with an identity (no Memory members; no Storage,
        # or SimpleStorage only): absence from Redfish proves nothing.
        return [
            finding(
                f"{kind}_seen_by_bmc",
                "node",
                f"the BMC lists the {len(inos)} {kind}(s) the OS sees",
                f"{len(pre)} listed without identity; {bmc_gap}",
                Verdict.INCONCLUSIVE,
                source="crosscheck",
                required=False,
            )
        ]
    pre_keys = {k: p for p in pre if (k := key(p))}
    os_keys = {k: p for p in inos if (k := key(p))}
    out: list[Finding] = []
    if len(pre_keys) < len(pre) or len(os_keys) < len(inos):
        # Without an identity for every part, only the counts can be compared.
        verdict = Verdict.PASS if len(pre) == len(inos) else Verdict.FAIL
        out.append(
            finding(
                f"{kind}_views_agree",
                "node",
                f"{len(pre)} {kind}(s), as the BMC lists",
                f"{len(inos)} in the OS; identities missing on "
                f"{len(pre) - len(pre_keys)} BMC / {len(inos) - len(os_keys)} OS part(s)",
                verdict,
                source="crosscheck",
                required=False,
            )
        )
    for k, part in sorted(pre_keys.items()):
        if k not in os_keys:
            out.append(
                finding(
                    f"{kind}_seen_by_os",
                    label(part),
                    f"the OS sees {k}",
                    "absent in the OS",
                    Verdict.FAIL,
                    source="crosscheck",
                )
            )
    for k, part in sorted(os_keys.items()):
        if k not in pre_keys:
            out.append(
                finding(
                    f"{kind}_seen_by_bmc",
                    label(part),
                    f"the BMC lists {k}",
                    "absent from Redfish",
                    Verdict.FAIL,
                    source="crosscheck",
                )
            )
    matched = sorted(set(pre_keys) & set(os_keys))
    if matched and len(matched) == len(pre_keys) == len(os_keys):
        out.append(
            finding(
                f"{kind}_views_agree",
                "node",
                f"{len(pre)} {kind}(s) matched by identity",
                f"{len(matched)} matched",
                Verdict.PASS,
                source="crosscheck",
            )
        )
    return out


def crosscheck(pre: HardwareInventory, inos: HardwareInventory) -> list[Finding]:
    out: list[Finding] = []
    out += _match(
        "dimm",
        [d for d in pre.dimms if d.present],
        [d for d in inos.dimms if d.present],
        lambda d: _norm(d.serial),
        lambda d: f"dimm:{d.locator} (serial {d.serial})",
        pre.gaps.get("memory"),
    )
    out += _match(
        "gpu", pre.gpus, inos.gpus, lambda g: _norm(g.serial), lambda g: f"gpu:{g.index} (serial {g.serial})"
    )
    out += _match(
        "drive",
        pre.drives,
        inos.drives,
        lambda d: _norm(d.serial) or normalize_wwn(known(d.wwn)),
        lambda d: f"drive:{d.name} (serial {d.serial or d.wwn})",
        pre.gaps.get("storage"),
    )
    out += _match("nic", pre.nics, inos.nics, lambda n: _norm(n.mac), lambda n: f"nic:{n.name} ({n.mac})")
    # CPUs expose no serial either side can read: sockets and models only.
    pre_cpus = sorted(c.model or "?" for c in pre.cpus)
    os_cpus = sorted(c.model or "?" for c in inos.cpus)
    if pre_cpus or os_cpus:
        verdict = Verdict.PASS if pre_cpus == os_cpus else Verdict.FAIL
        out.append(finding("cpu_views_agree", "node", pre_cpus, os_cpus, verdict, source="crosscheck"))
    pre_serial, os_serial = _norm(pre.system.serial), _norm(inos.system.serial)
    if pre_serial or os_serial:
        verdict = (
            Verdict.INCONCLUSIVE
            if not (pre_serial and os_serial)
            else (Verdict.PASS if pre_serial == os_serial else Verdict.FAIL)
        )
        out.append(
            finding(
                "system_serial_match",
                "system",
                pre.system.serial,
                inos.system.serial,
                verdict,
                source="crosscheck",
                required=False,
            )
        )
    return out
