"""The site's PDUs (`pdus:` in profiles/site.yaml): where each one answers SNMP, with which MIB, and
how much its circuit may carry. Pure models.

A secret never lives here: the v2c community and the v3 passphrases are `env:NAME` or `file:PATH`
references, read only when a reading is taken (provision.pdu.secrets). The v3 user name is not a
secret and is written as is.

The circuit's continuous rating is `continuous_w` when given, else circuit_amps x voltage_v x
continuous_pct% (NEC: a continuous load at most 80% of the breaker). One of the two is required.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from provision.model.grammar import HostOrAddress, UserName, shown
from provision.model.profile import Frozen

_SECRET_REF = re.compile(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)")
# What an SNMP index suffix may be: dotted numbers ("1.2.7" is Sentry4's unit.cord.outlet).
_INDEX = re.compile(r"[0-9]{1,10}(\.[0-9]{1,10}){0,7}")


class MibFamily(StrEnum):
    raritan_pdu2 = "raritan-pdu2"  # Raritan PX2/PX3/PX4: PDU2-MIB
    apc_rpdu2 = "apc-rpdu2"  # APC/Schneider AP8xxx: PowerNet-MIB rPDU2
    servertech_sentry4 = "servertech-sentry4"  # Server Technology PRO1/PRO2: Sentry4-MIB
    entity_sensor = "entity-sensor"  # anything with RFC 3433 ENTITY-SENSOR-MIB (fallback)


def secret_ref_problem(value: str) -> str | None:
    """Why `value` is not an env:/file: reference, without echoing it (it may be the secret)."""
    if _SECRET_REF.fullmatch(value):
        return None
    shape = (
        "env:<not a variable name>" if value.startswith("env:") else f"a literal of {len(value)} characters"
    )
    return f"expected env:NAME or file:PATH (never the secret itself), got {shape}"


def _ref(value: str) -> str:
    problem = secret_ref_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class Snmp(Frozen):
    """v2c (`community`) or v3 (`user`, an authentication passphrase and, unless priv_protocol is
    none, a privacy passphrase). One model rather than a union: a refused value's message is then
    always the field's own, which never echoes what it got."""

    version: Literal["v2c", "v3"]
    community: str | None = None  # v2c: env:NAME or file:PATH
    user: UserName | None = None  # v3: not a secret
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha256"
    auth_passphrase: str | None = None  # v3: env:NAME or file:PATH
    priv_protocol: Literal["none", "des", "aes128", "aes192", "aes256"] = "aes128"
    priv_passphrase: str | None = None  # v3: env:NAME or file:PATH; required unless priv_protocol is none
    context: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{0,32}$")] = ""  # v3 context name

    @field_validator("community", "auth_passphrase", "priv_passphrase")
    @classmethod
    def _refs(cls, v: str | None) -> str | None:
        return None if v is None else _ref(v)

    @model_validator(mode="after")
    def _version(self) -> Snmp:
        if self.version == "v2c":
            if self.community is None:
                raise ValueError("expected community (env:NAME or file:PATH) for SNMP v2c, got none")
            if self.user or self.auth_passphrase or self.priv_passphrase:
                raise ValueError("expected only community for SNMP v2c, got v3 fields too")
            return self
        if self.community is not None:
            raise ValueError("expected no community for SNMP v3 (user and passphrases), got one")
        if self.user is None or self.auth_passphrase is None:
            raise ValueError(
                "expected user and auth_passphrase (env:NAME or file:PATH) for SNMP v3, got none"
            )
        if self.priv_protocol != "none" and self.priv_passphrase is None:
            raise ValueError(
                f"expected priv_passphrase (env:NAME or file:PATH) for priv_protocol {self.priv_protocol}, "
                "got none"
            )
        if self.priv_protocol == "none" and self.priv_passphrase is not None:
            raise ValueError("expected no priv_passphrase with priv_protocol none, got one")
        return self


class OutletIndex(Frozen):
    number: Annotated[int, Field(gt=0, le=1000)]
    index: str  # dotted numbers, e.g. 1.2.7

    @field_validator("index")
    @classmethod
    def _index(cls, v: str) -> str:
        if not _INDEX.fullmatch(v):
            raise ValueError(f"expected an index like 1.1.7, got {shown(v)}")
        return v


class Pdu(Frozen):
    name: str  # taxonomy: inferno-pdu-circle<n>-<k> (provision lint checks it)
    address: HostOrAddress
    port: Annotated[int, Field(gt=0, lt=65536)] = 161
    snmp: Snmp
    mib: MibFamily
    continuous_w: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    circuit_amps: Annotated[int, Field(gt=0, le=1000)] | None = None
    voltage_v: Annotated[int, Field(gt=0, le=1000)] | None = None
    continuous_pct: Annotated[float, Field(gt=0, le=100)] = 80.0
    # Raritan daisy chains and Sentry4 link units: which unit of the chain this PDU is.
    unit: Annotated[int, Field(ge=1, le=64)] = 1
    # Outlet number (as hosts.yaml's pdu_outlet says it) -> the agent's index suffix, where the
    # faceplate's numbering is not the walk order (Sentry4's unit.cord.outlet, APC's chained units).
    outlets: tuple[OutletIndex, ...] = ()
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1

    @model_validator(mode="after")
    def _rating(self) -> Pdu:
        if self.continuous_w is None and (self.circuit_amps is None or self.voltage_v is None):
            raise ValueError(
                "expected continuous_w, or circuit_amps and voltage_v to derive it "
                "(amps x volts x continuous_pct%), got neither"
            )
        return self

    @property
    def rating_w(self) -> float:
        """The circuit's continuous rating in watts."""
        if self.continuous_w is not None:
            return float(self.continuous_w)
        # _rating made sure both are set when continuous_w is not.
        return (self.circuit_amps or 0) * (self.voltage_v or 0) * self.continuous_pct / 100.0

    @property
    def outlet_map(self) -> dict[int, str]:
        return {o.number: o.index for o in self.outlets}

    @property
    def rating_text(self) -> str:
        if self.continuous_w is not None:
            return f"{self.rating_w:.0f} W continuous (site.yaml)"
        return (
            f"{self.rating_w:.0f} W ({self.circuit_amps} A x {self.voltage_v} V x {self.continuous_pct:g}%)"
        )


def find_pdu(pdus: tuple[Pdu, ...], name: str) -> Pdu | None:
    return next((p for p in pdus if p.name == name), None)
