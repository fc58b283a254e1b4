"""Adapter: take one reading of a site PDU over SNMP (`pdu_load`), for `provision pdu`, the burn-in's
sampler and the fleet's power admission.

A PDU that does not answer, refuses us, or answers noSuchObject for every power column gives an
*inconclusive* reading that says why; never zero watts. Only the site's own mistakes (an unset
env: variable, an unreadable file: secret) raise, as BadInput.
"""

from __future__ import annotations

import time

from provision.model.pdus import MibFamily, Pdu
from provision.pdu.meters import PduReading
from provision.pdu.mibs import COLUMNS, POWER_COLUMNS, parse_walk
from provision.pdu.secrets import read_secret
from provision.pdu.snmp import SnmpAuth, SnmpFailure, SnmpTarget, walk_columns


def snmp_auth(pdu: Pdu) -> SnmpAuth:
    """The PDU's SNMP credentials, its env:/file: references resolved. Errors name the field only."""
    where = f"site.yaml: pdus[{pdu.name}].snmp"
    snmp = pdu.snmp
    if snmp.version == "v2c":
        return SnmpAuth("v2c", community=read_secret(snmp.community or "", f"{where}.community"))
    return SnmpAuth(
        "v3",
        user=snmp.user or "",
        auth_protocol=snmp.auth_protocol,
        auth_key=read_secret(snmp.auth_passphrase or "", f"{where}.auth_passphrase"),
        priv_protocol=snmp.priv_protocol,
        priv_key=read_secret(snmp.priv_passphrase, f"{where}.priv_passphrase")
        if snmp.priv_passphrase
        else "",
        context=snmp.context,
    )


def pdu_target(pdu: Pdu, timeout_s: float | None = None) -> SnmpTarget:
    return SnmpTarget(pdu.address, pdu.port, snmp_auth(pdu), timeout_s or pdu.timeout_s, pdu.retries)


def pdu_load(site_pdu: Pdu, timeout_s: float | None = None) -> PduReading:
    """One reading of every inlet and outlet of `site_pdu` (power W, current A), stamped `taken_at`;
    `inconclusive` says why when there is no usable reading. `timeout_s`: per SNMP request (the
    site's `timeout_s` when None), tried 1 + `retries` times."""
    target = pdu_target(site_pdu, timeout_s)
    family = MibFamily(site_pdu.mib)
    columns = COLUMNS[family]
    started = time.monotonic()
    taken_at = time.time()
    try:
        walked = walk_columns(target, list(columns.values()))
    except SnmpFailure as exc:
        return PduReading(
            site_pdu.name, taken_at, str(family), inconclusive=str(exc), elapsed_s=time.monotonic() - started
        )
    cols = {name: walked[oid] for name, oid in columns.items()}
    elapsed = time.monotonic() - started
    if not any(cols[name] for name in POWER_COLUMNS[family]):
        missing = ", ".join(f"{name} ({columns[name]})" for name in POWER_COLUMNS[family])
        return PduReading(
            site_pdu.name,
            taken_at,
            str(family),
            inconclusive=(
                f"SNMP agent {target.where()} answered noSuchObject for {missing}: "
                f"not a {family} PDU, or a model without meters"
            ),
            elapsed_s=elapsed,
        )
    parsed = parse_walk(family, cols, site_pdu.unit, site_pdu.outlet_map)
    return PduReading(
        site_pdu.name,
        taken_at,
        str(family),
        parsed.inlets,
        parsed.outlets,
        elapsed_s=elapsed,
        notes=parsed.notes,
    )
