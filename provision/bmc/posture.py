"""Reading a BMC's security posture: ManagerNetworkProtocol (IPMI over LAN, plain HTTP), the
AccountService's accounts, and the certificates (the HTTPS service's, else the CertificateService's
locations). No I/O here beyond `fetch` (the adapter's GET, or one inspection's ResourceCache).
A part the BMC does not serve is a gap, never an error.
"""

from __future__ import annotations

from typing import Any

from provision.bmc.reader import Doc, Fetch, obj_of, ref_of, refs_of, str_of
from provision.model.posture import AccountState, BmcPosture, CertificateState, ProtocolState

ROOT = "/redfish/v1"
PROTOCOLS = ("IPMI", "HTTP", "HTTPS", "SSH")


def _members(fetch: Fetch, path: str | None) -> list[tuple[str, Doc]]:
    coll = fetch(path) if path else None
    out = []
    for ref in refs_of((coll or {}).get("Members")):
        doc = fetch(ref)
        if doc is not None:
            out.append((ref, doc))
    return out


def _manager(fetch: Fetch, root: Doc, system: str | None) -> tuple[str, Doc] | None:
    """The host's BMC: the managers its System names (Links.ManagedBy; the only System's where
    `system` is not given), else every manager listed. On a BMC fronting many Systems that reads
    one manager, not one per node."""
    if system is None:
        listed = refs_of((fetch(ref_of(root, "Systems") or f"{ROOT}/Systems") or {}).get("Members"))
        system = listed[0] if len(listed) == 1 else None
    named = refs_of(obj_of(fetch(system) or {}, "Links").get("ManagedBy")) if system else []
    managers = [(p, d) for p in named if (d := fetch(p)) is not None]
    if not managers:
        managers = _members(fetch, ref_of(root, "Managers"))
    for path, doc in managers:
        if doc.get("ManagerType") == "BMC":
            return path, doc
    return managers[0] if managers else None


def _protocols(doc: Doc) -> dict[str, ProtocolState]:
    out = {}
    for name in PROTOCOLS:
        value = doc.get(name)
        if isinstance(value, dict):
            enabled = value.get("ProtocolEnabled")
            port = value.get("Port")
            out[name] = ProtocolState(
                name,
                enabled if isinstance(enabled, bool) else None,
                port if isinstance(port, int) and not isinstance(port, bool) else None,
            )
    return out


def _name(value: Any) -> str | None:
    """A certificate's Identifier object as one line ("CN=x, O=y"), or None."""
    if not isinstance(value, dict):
        return None
    keys = (("CommonName", "CN"), ("Organization", "O"), ("OrganizationalUnit", "OU"), ("Country", "C"))
    parts = [f"{short}={value[k]}" for k, short in keys if isinstance(value.get(k), str) and value[k]]
    return ", ".join(parts) or None


def _certificate(path: str, doc: Doc) -> CertificateState:
    subject, issuer = _name(doc.get("Subject")), _name(doc.get("Issuer"))
    same = None if subject is None or issuer is None else subject == issuer
    return CertificateState(path, subject, issuer, same)


def _located(fetch: Fetch, root: Doc) -> list[str]:
    """The HTTPS server certificates among those the CertificateService's CertificateLocations links:
    the others (LDAP or virtual media trust anchors) are CAs, which are self-signed by nature."""
    service_path = ref_of(root, "CertificateService")
    service = fetch(service_path) if service_path else None
    locations_path = ref_of(service, "CertificateLocations")
    locations = fetch(locations_path) if locations_path else None
    every = refs_of(obj_of(locations or {}, "Links").get("Certificates"))
    return [p for p in every if "/NetworkProtocol/HTTPS/" in p]


def read_posture(fetch: Fetch, system: str | None = None) -> BmcPosture:
    """The posture of the BMC that manages `system` (the host's bmc.system; None: the only one)."""
    root = fetch(ROOT) or {}
    gaps: dict[str, str] = {}
    found = _manager(fetch, root, system)
    manager = found[0] if found else None
    protocols: dict[str, ProtocolState] | None = None
    https_certs: str | None = None
    proto_path = ref_of(found[1], "NetworkProtocol") if found else None
    proto = fetch(proto_path) if proto_path else None
    if proto is None:
        gaps["protocols"] = "the BMC serves no ManagerNetworkProtocol"
    else:
        protocols = _protocols(proto)
        https_certs = ref_of(obj_of(proto, "HTTPS"), "Certificates")

    accounts: list[AccountState] | None = None
    service = fetch(ref_of(root, "AccountService") or f"{ROOT}/AccountService")
    if service is None:
        gaps["accounts"] = "the BMC serves no AccountService"
    else:
        accounts = []
        for path, doc in _members(fetch, ref_of(service, "Accounts")):
            user = str_of(doc.get("UserName"))
            if user is None:
                continue  # an empty slot (iDRAC lists 16, most unnamed)
            enabled = doc.get("Enabled")
            role = str_of(doc.get("RoleId"))
            accounts.append(AccountState(path, user, enabled if isinstance(enabled, bool) else None, role))

    certificates: list[CertificateState] | None = None
    paths = refs_of((fetch(https_certs) or {}).get("Members")) if https_certs else []
    if not paths:
        paths = _located(fetch, root)
    if paths:
        certificates = [_certificate(p, cert) for p in paths if (cert := fetch(p)) is not None]
    else:
        gaps["certificates"] = (
            "the BMC shows no HTTPS certificate (ManagerNetworkProtocol, CertificateService)"
        )
    return BmcPosture(manager, protocols, accounts, certificates, gaps)


__all__ = ["read_posture"]
