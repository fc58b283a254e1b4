"""How an accepted host joins its cluster: a profile's `handoff:` block and the site's `rhcos:` block.
Pure: typed, frozen models.

    handoff:                 # in a profile
      join: rhcos            # rhcos | metal3 | none
      config_pool: worker    # optional: the MachineConfigPool whose rendered config the host boots

    rhcos:                   # in site.yaml: the RHCOS live images on the site's mirror
      kernel_url: http://10.0.1.5/rhcos/4.14/rhcos-live-kernel-x86_64
      initramfs_url: http://10.0.1.5/rhcos/4.14/rhcos-live-initramfs.x86_64.img
      rootfs_url: http://10.0.1.5/rhcos/4.14/rhcos-live-rootfs.x86_64.img
      cluster_domain: inferno.example.com   # api-int.<cluster_domain>:22623 serves the pools' configs
      root_ca: |                             # optional: the CA the machine-config server's TLS chains to
        -----BEGIN CERTIFICATE-----
        ...

OpenShift 4.14 runs its compute nodes on RHCOS (or RHEL 8.6-8.8); the Rocky Linux the burn-in runs
on cannot join. `rhcos` reinstalls the accepted host with RHCOS through the same boot chain and an
Ignition config that merges the pool's config from the machine-config server; `metal3` hands the
host to a bare-metal IPI cluster as a BareMetalHost; `none` only labels a Node that already exists.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from provision.model.grammar import HOST_NAME_RE, HostName, Url, shown

# A MachineConfigPool's name as it reaches the machine-config server's URL path: a DNS-1123 label.
POOL_RE = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_PEM = re.compile(r"(-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END CERTIFICATE-----\n?)+")
MCS_PORT = 22623  # the machine-config server on api-int


class Frozen(BaseModel):  # profile.Frozen's rules; profile.py imports this module
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinMode(StrEnum):
    rhcos = "rhcos"  # reinstall with RHCOS, Ignition merges the pool's config; approve the CSRs
    metal3 = "metal3"  # a BareMetalHost in openshift-machine-api: the cluster provisions it
    none = "none"  # the Node exists already (or a person joins it): labels and taints only


def pool_problem(name: str) -> str | None:
    """Why a pool name cannot reach the machine-config server's URL, or None."""
    if len(name) <= 63 and re.fullmatch(POOL_RE, name):
        return None
    return f"expected a MachineConfigPool name (lower-case letters, digits and inner -), got {shown(name)}"


def _pool(value: str) -> str:
    problem = pool_problem(value)
    if problem:
        raise ValueError(problem)
    return value


PoolName = Annotated[str, AfterValidator(_pool)]


class Handoff(Frozen):
    join: JoinMode = JoinMode.none
    # The pool whose rendered config the host first boots with; default the profile's platform.pool.
    config_pool: PoolName | None = None


class Rhcos(Frozen):
    """The site's RHCOS live images and the cluster the hosts join (`join: rhcos`)."""

    kernel_url: Url
    initramfs_url: Url
    rootfs_url: Url
    cluster_domain: HostName  # <cluster name>.<base domain>
    root_ca: str | None = None  # PEM: the CA of the machine-config server's certificate

    @field_validator("cluster_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not re.fullmatch(HOST_NAME_RE, v) or "." not in v:
            raise ValueError(f"expected the cluster's domain like inferno.example.com, got {shown(v)}")
        return v

    @field_validator("root_ca")
    @classmethod
    def _pem(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 65536 or not _PEM.fullmatch(v.strip() + "\n")):
            raise ValueError(
                "expected PEM certificates (-----BEGIN CERTIFICATE-----, base64 lines, "
                f"-----END CERTIFICATE-----), got {shown(v)}"
            )
        return v

    def config_url(self, pool: str) -> str:
        """The machine-config server's rendered config for `pool` (a pointer config merges it)."""
        return f"https://api-int.{self.cluster_domain}:{MCS_PORT}/config/{pool}"
