"""Site settings (`profiles/site.yaml`): what every install at this site shares.

Mirror and driver repositories, the operators' SSH keys, the root password policy, time. Pure
models; `provision.model.catalog` loads the file. A secret never lives here in clear: root is locked or
carries a SHA-512 crypt hash.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from provision.model.grammar import Arch, HostOrAddress, PackageName, RepoName, Timezone, Url, UserName, shown
from provision.model.handoff import Rhcos
from provision.model.limits import Limits
from provision.model.naming import Naming
from provision.model.pdus import Pdu
from provision.model.profile import Frozen

# The comment: printable, no " or \ (it lands inside "..." on the kickstart's sshkey line).
_SSH_KEY = re.compile(
    r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\"\\\x00-\x1f\x7f]*)?"
)
# crypt(3) SHA-512: $6$[rounds=N$]salt$86-char hash. Nothing else may reach `rootpw --iscrypted`.
_SHA512_CRYPT = re.compile(r"^\$6\$(rounds=\d{4,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$")


class Repo(Frozen):
    name: RepoName
    url: Url


class Admin(Frozen):
    name: UserName = "inferno"
    ssh_keys: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _user(cls, v: str) -> str:
        if v == "root":
            raise ValueError(f"expected a POSIX user name other than root, got {v!r}")
        return v

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            if len(key) > 16384 or not _SSH_KEY.fullmatch(key):
                raise ValueError(
                    f"expected OpenSSH public keys ('ssh-ed25519 AAAA... comment'), got {shown(key)}"
                )
        return v


class Nvidia(Frozen):
    """The driver the burn-in uses on GPU hosts (precompiled kmod or DKMS: the packages say which)."""

    repo_url: Url = "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64"
    # Blackwell needs the open kernel modules; DKMS builds them against the installed kernel.
    packages: tuple[PackageName, ...] = ("kernel-devel", "dkms", "nvidia-open", "nvidia-persistenced")


class Site(Frozen):
    # A Rocky tree holding BaseOS/ and AppStream/; the default is the public vault for 9.3.
    mirror_url: Url = "https://dl.rockylinux.org/vault/rocky/9.3"
    arch: Arch = "x86_64"
    # memtester and dkms live in EPEL.
    extra_repos: tuple[Repo, ...] = (
        Repo(name="epel", url="https://dl.fedoraproject.org/pub/epel/9/Everything/x86_64"),
    )
    nvidia: Nvidia = Nvidia()
    admin: Admin = Admin()
    root_password_hash: str | None = None  # None: root is locked
    timezone: Timezone = "Etc/UTC"
    ntp_servers: tuple[HostOrAddress, ...] = ("2.rocky.pool.ntp.org",)
    boot_server_url: Url = "http://127.0.0.1:8080"  # what installers reach: iPXE, kickstart, callbacks
    boot_images_dir: str | None = None  # vmlinuz and initrd.img of the install tree, served by `serve`
    console: str | None = None  # e.g. ttyS0,115200 for serial-over-LAN
    packages: tuple[PackageName, ...] = ()  # added to the burn-in set
    pdus: tuple[Pdu, ...] = ()  # SNMP-read PDUs (provision.model.pdus); optional equipment
    limits: Limits = Limits()  # fleet admission: BMC, install, agent-push and PDU limits (model/limits.py)
    rhcos: Rhcos | None = None  # RHCOS live images and the cluster, for `handoff.join: rhcos`
    naming: Naming = Naming.inferno  # lab: the embedded lab's own names (model/naming.py)

    @field_validator("root_password_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not _SHA512_CRYPT.fullmatch(v):
            raise ValueError(
                "expected a SHA-512 crypt hash ($6$salt$...; make one with `openssl passwd -6`) or null "
                "to lock root, got something else (not echoed: it may be a password)"
            )
        return v

    @field_validator("console")
    @classmethod
    def _console(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9]{1,32}(,[0-9]+[a-z0-9]*)?", v):
            raise ValueError(f"expected a kernel console like ttyS0,115200, got {shown(v)}")
        return v

    @property
    def baseos_url(self) -> str:
        return f"{self.mirror_url}/BaseOS/{self.arch}/os"

    @property
    def appstream_url(self) -> str:
        return f"{self.mirror_url}/AppStream/{self.arch}/os"
