"""What a BMC shows of its own security posture: the network protocols it serves, its accounts,
its certificates. Pure types: provision.bmc.posture reads them, provision.acceptance.posture
judges them. No secret is ever part of them (an account is its name, role and whether enabled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Accounts BMCs ship with: Dell iDRAC and OpenBMC "root", Supermicro "ADMIN", Lenovo XCC "USERID",
# HPE iLO "Administrator", AMI MegaRAC / ASRock Rack "admin".
DEFAULT_ACCOUNTS: dict[str, str] = {
    "root": "Dell iDRAC / OpenBMC",
    "ADMIN": "Supermicro",
    "USERID": "Lenovo XCC",
    "Administrator": "HPE iLO",
    "admin": "AMI MegaRAC / ASRock Rack",
}


@dataclass(frozen=True)
class ProtocolState:
    name: str  # the ManagerNetworkProtocol property: "IPMI", "HTTP", "HTTPS", "SSH"
    enabled: bool | None
    port: int | None = None


@dataclass(frozen=True)
class AccountState:
    path: str
    user: str
    enabled: bool | None
    role: str | None = None


@dataclass(frozen=True)
class CertificateState:
    path: str
    subject: str | None  # "CN=idrac-7XK2M93, O=Dell Inc."
    issuer: str | None
    self_signed: bool | None  # issuer == subject; None when either is not shown


@dataclass(frozen=True)
class BmcPosture:
    """None for a part means the BMC does not serve it (its reason is in `gaps`)."""

    manager: str | None  # the Manager resource read
    protocols: dict[str, ProtocolState] | None = None
    accounts: list[AccountState] | None = None
    certificates: list[CertificateState] | None = None
    gaps: dict[str, str] = field(default_factory=dict)


__all__ = ["DEFAULT_ACCOUNTS", "AccountState", "BmcPosture", "CertificateState", "ProtocolState"]
