"""The host inventory (`profiles/hosts.yaml`): which physical server is where and how to reach it.

Pure models. The BMC secret itself is never stored here: `credentials` names where to read it.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from provision.model.grammar import (
    Cidr,
    HostName,
    HostOrAddress,
    InterfaceName,
    IpAddress,
    UserName,
    shown,
    without_userinfo,
)
from provision.model.profile import Frozen

MAC_RE = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"
_TLS_WORDS = {"yes", "no", "on", "off", "true", "false", "y", "n", ""}


def _mac(v: str) -> str:
    """Six colon-separated hex octets; BMCs print them in either case, the inventory keeps lower case."""
    low = v.lower()
    if not re.fullmatch(MAC_RE, low):  # fullmatch: `$` alone lets a trailing newline through
        raise ValueError(f"expected a MAC address like 3c:ec:ef:20:01:10, got {shown(v)}")
    return low


Mac = Annotated[str, AfterValidator(_mac)]


class BmcAuth(StrEnum):
    auto = "auto"  # a Redfish session, falling back to HTTP Basic where the BMC has no SessionService
    session = "session"
    basic = "basic"


class Bmc(Frozen):
    url: str  # Redfish service root host, https://...
    system: str | None = None  # /redfish/v1/Systems/<id>; default: the only system
    credentials: str  # env:NAME or file:PATH; the secret is "user:password"
    verify_tls: bool | str = True  # true, false (explicit and loud), or a CA bundle path
    auth: BmcAuth = BmcAuth.auto
    # sushy's own defaults spend ~30 s failing against a dead BMC; these bound every call.
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 4  # per BMC call, transient faults only
    retry_delay_s: Annotated[float, Field(ge=0, le=60)] = 1.0  # first back-off, doubled each time
    power_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 300.0  # wait for On/Off

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # A password in the URL would be printed by show, inspect and their errors, and stored in
        # run documents: refused, and never echoed (the secret belongs in `credentials`).
        if "@" in v:
            got = without_userinfo(v)
            raise ValueError(f"expected a URL without user:password@ (see bmc.credentials), got {got!r}")
        if not re.match(r"^https?://[^/\s]+$", v):
            raise ValueError(f"expected http(s)://host[:port] with no path, got {v!r}")
        return v

    @field_validator("credentials")
    @classmethod
    def _creds(cls, v: str) -> str:
        if not re.match(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$", v):
            # Never echo it: a value here that is not a reference is most likely the secret itself.
            shape = (
                "env:<not a variable name>" if v.startswith("env:") else f"a literal of {len(v)} characters"
            )
            raise ValueError(f"expected env:NAME or file:PATH (never the secret itself), got {shape}")
        return v

    @field_validator("verify_tls")
    @classmethod
    def _tls(cls, v: bool | str) -> bool | str:
        if isinstance(v, str) and v.strip().lower() in _TLS_WORDS:
            raise ValueError(f"expected true, false or a CA bundle path, got {v!r}")
        return v

    @field_validator("system")
    @classmethod
    def _system(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/redfish/v1/Systems/"):
            raise ValueError(f"expected a path under /redfish/v1/Systems/, got {v!r}")
        return v


class Interface(Frozen):
    name: InterfaceName
    mac: Mac
    address: Cidr | None = None  # CIDR, e.g. 10.0.1.11/24; None: DHCP
    gateway: IpAddress | None = None
    nameservers: tuple[IpAddress, ...] = ()

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str | None, info: ValidationInfo) -> str | None:
        # address is declared first, so it is validated (and present when valid) by now.
        if v is None or "address" not in info.data:
            return v
        address = info.data["address"]
        if address is None:
            raise ValueError(f"expected no gateway on a DHCP interface (it has no address), got {shown(v)}")
        net = ipaddress.IPv4Interface(address)
        gateway = ipaddress.ip_address(v)
        if gateway not in net.network or gateway == net.ip:
            raise ValueError(f"expected a gateway inside {net.network} other than {net.ip}, got {shown(v)}")
        return v


class DiskId(Frozen):
    """A drive by stable identity: serial or WWN (never /dev/sdX, whose order can change)."""

    serial: str | None = None
    wwn: str | None = None
    model: str | None = None


class Host(Frozen):
    name: HostName
    profile: str
    rack: str
    pdu: str
    pdu_outlet: Annotated[int, Field(gt=0, le=1000)]  # a sane outlet number, not 32 digits
    boot_mac: Mac
    interfaces: tuple[Interface, ...]
    bmc: Bmc
    boot_disks: tuple[DiskId, ...] = ()  # from inspection when empty
    scratch_disks: tuple[DiskId, ...] = ()  # allow-list for destructive tests and the ZFS pool
    ssh_user: UserName = "root"  # and root or the site's admin: grammar.ssh_user_problem
    ssh_port: Annotated[int, Field(gt=0, lt=65536)] = 22
    address: HostOrAddress | None = None  # where the controller reaches the installed OS; default eth0's
    designation: str | None = None  # the seed's note on the host, e.g. "primary"

    @property
    def ssh_address(self) -> str | None:
        if self.address:
            return self.address
        for iface in self.interfaces:
            if iface.address:
                return iface.address.split("/")[0]
        return None


class Inventory(Frozen):
    hosts: tuple[Host, ...]
