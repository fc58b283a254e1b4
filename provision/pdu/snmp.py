"""Adapter: SNMP GET and walk with pysnmp, synchronous to its callers.

pysnmp 7 is asyncio-only; each `walk_columns` call runs one event loop (`asyncio.run`) with an engine
of its own, so a caller in any thread (the flow's pool, the CLI) gets a plain function. pysnmp's
objects never leave this module: values come back as int or str keyed by numeric OID tuples.

Every failure is an SnmpFailure whose message names the agent (host:port) and what failed: no answer
within timeout x tries, an authentication refusal (v3), or an error status. Never the secret.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provision.model.errors import ExternalError

Oid = tuple[int, ...]
Value = int | str

# pysnmp's names for the site file's protocols (provision.model.pdus).
_AUTH = {
    "md5": "usmHMACMD5AuthProtocol",
    "sha": "usmHMACSHAAuthProtocol",
    "sha224": "usmHMAC128SHA224AuthProtocol",
    "sha256": "usmHMAC192SHA256AuthProtocol",
    "sha384": "usmHMAC256SHA384AuthProtocol",
    "sha512": "usmHMAC384SHA512AuthProtocol",
}
_PRIV = {
    "none": "usmNoPrivProtocol",
    "des": "usmDESPrivProtocol",
    "3des": "usm3DESEDEPrivProtocol",
    "aes128": "usmAesCfb128Protocol",
    "aes192": "usmAesCfb192Protocol",
    "aes256": "usmAesCfb256Protocol",
}
MAX_REPETITIONS = 25
MAX_ROWS = 20_000  # per column: a PDU has tens of outlets; an agent that never ends is cut short


class SnmpFailure(ExternalError):
    """The agent did not answer, refused us, or answered with an error status."""


@dataclass(frozen=True)
class SnmpAuth:
    """v2c (community) or v3 (user, keys, protocols). The secrets are resolved already: keep this out
    of logs; the repr hides them."""

    version: str  # "v2c" | "v3"
    community: str = ""
    user: str = ""
    auth_protocol: str = "sha256"
    auth_key: str = ""
    priv_protocol: str = "none"
    priv_key: str = ""
    context: str = ""  # SNMPv3 context name ("" is the agent's default)

    def __repr__(self) -> str:
        return f"SnmpAuth(version={self.version!r}, user={self.user!r}, keys='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class SnmpTarget:
    host: str
    port: int
    auth: SnmpAuth
    timeout_s: float = 2.0
    retries: int = 1

    def where(self) -> str:
        return f"{self.host}:{self.port}"


def oid_of(text: str) -> Oid:
    return tuple(int(part) for part in text.strip(".").split("."))


def _hlapi() -> Any:
    """pysnmp's high-level API, imported at the first request: it costs ~0.25 s, which every CLI
    command and flow would otherwise pay at start-up whether or not the site has a PDU."""
    return importlib.import_module("pysnmp.hlapi.v3arch.asyncio")


def _auth_data(api: Any, auth: SnmpAuth) -> Any:
    if auth.version == "v2c":
        return api.CommunityData(auth.community, mpModel=1)
    if auth.priv_protocol == "none":
        return api.UsmUserData(
            auth.user, authKey=auth.auth_key, authProtocol=getattr(api, _AUTH[auth.auth_protocol])
        )
    return api.UsmUserData(
        auth.user,
        authKey=auth.auth_key,
        privKey=auth.priv_key,
        authProtocol=getattr(api, _AUTH[auth.auth_protocol]),
        privProtocol=getattr(api, _PRIV[auth.priv_protocol]),
    )


_NUMERIC = frozenset({"Integer", "Integer32", "Gauge32", "Unsigned32", "Counter32", "Counter64", "TimeTicks"})


def _value(api: Any, raw: Any) -> Value | None:
    """int for the numeric types, str for octet strings; None for noSuchObject, noSuchInstance and
    endOfMibView (pysnmp's `Null` subclasses), which are absences, never zero."""
    if isinstance(raw, api.OctetString):
        return str(raw.prettyPrint())
    if any(cls.__name__ in _NUMERIC for cls in type(raw).__mro__):
        return int(raw)
    return None


async def _walk(target: SnmpTarget, columns: Sequence[Oid]) -> dict[Oid, dict[Oid, Value]]:
    api = _hlapi()
    engine = api.SnmpEngine()
    try:
        transport = await api.UdpTransportTarget.create(
            (target.host, target.port), timeout=target.timeout_s, retries=target.retries
        )
        auth = _auth_data(api, target.auth)
        context = (
            api.ContextData(contextName=target.auth.context)
            if target.auth.version == "v3"
            else api.ContextData()
        )
        out: dict[Oid, dict[Oid, Value]] = {}
        for column in columns:
            rows: dict[Oid, Value] = {}
            async for indication, status, index, binds in api.bulk_walk_cmd(
                engine,
                auth,
                transport,
                context,
                0,
                MAX_REPETITIONS,
                api.ObjectType(api.ObjectIdentity(column)),
                lexicographicMode=False,
                lookupMib=False,
            ):
                if indication:
                    raise SnmpFailure(_indication(target, indication))
                if status:
                    raise SnmpFailure(
                        f"SNMP agent {target.where()}: {status.prettyPrint()} at binding {index}"
                    )
                for oid, raw in binds:
                    name = tuple(oid)
                    if name[: len(column)] != column:
                        continue
                    value = _value(api, raw)
                    if value is not None:
                        rows[name[len(column) :]] = value
                if len(rows) > MAX_ROWS:
                    break
            out[column] = rows
        return out
    finally:
        engine.close_dispatcher()


def _indication(target: SnmpTarget, indication: Any) -> str:
    text = str(indication)
    tries = target.retries + 1
    if "timeout" in text.lower() or "no snmp response" in text.lower():
        return (
            f"SNMP agent {target.where()}: no answer within {target.timeout_s:g} s x {tries} tries "
            "(address, port, community or v3 user wrong, or the PDU is down)"
        )
    return f"SNMP agent {target.where()}: {text}"


def walk_columns(target: SnmpTarget, columns: Sequence[str]) -> dict[str, dict[Oid, Value]]:
    """Each column's rows, index suffix -> value; a column the agent does not have comes back empty.
    Raises SnmpFailure when the agent does not answer or refuses."""
    oids = [oid_of(c) for c in columns]
    pysnmp_error = importlib.import_module("pysnmp.error").PySnmpError
    try:
        result = asyncio.run(_walk(target, oids))
    except OSError as exc:  # a socket the OS refuses
        raise SnmpFailure(f"SNMP agent {target.where()}: {exc.strerror or exc}") from None
    except pysnmp_error as exc:  # an address that does not resolve, a transport pysnmp refuses
        cause = exc.__cause__ or exc.__context__
        why = getattr(cause, "strerror", None) or str(exc).split(" caused by ")[0]
        raise SnmpFailure(f"SNMP agent {target.where()}: {why}") from None
    return {c: result.get(o, {}) for c, o in zip(columns, oids, strict=True)}
