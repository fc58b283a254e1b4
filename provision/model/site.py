"""Site settings (`profiles/site.yaml`): what every install at this site shares.

Mirror and driver repositories, the operators' SSH keys, the root password policy, time. Pure
models; `provision.model.catalog` loads the file. A secret never lives here in clear: root is locked or
carries a SHA-512 crypt hash.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from provision.model.profile import Frozen

_URL = re.compile(r"^https?://[^\s\"'`$\\]+$")
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\"\n\r]*)?$"
)
# crypt(3) SHA-512: $6$[rounds=N$]salt$86-char hash. Nothing else may reach `rootpw --iscrypted`.
_SHA512_CRYPT = re.compile(r"^\$6\$(rounds=\d{4,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _url(v: str) -> str:
    if not _URL.match(v):
        raise ValueError(f"expected an http(s) URL without spaces or quotes, got {v!r}")
    return v.rstrip("/")


class Repo(Frozen):
    name: str
    url: str

    @field_validator("url")
    @classmethod
    def _u(cls, v: str) -> str:
        return _url(v)

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"expected a repository id (letters, digits, . _ -), got {v!r}")
        return v


class Admin(Frozen):
    name: str = "inferno"
    ssh_keys: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", v) or v == "root":
            raise ValueError(f"expected a POSIX user name other than root, got {v!r}")
        return v

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            if not _SSH_KEY.match(key):
                raise ValueError(f"expected OpenSSH public keys ('ssh-ed25519 AAAA... comment'), got {key!r}")
        return v


class Nvidia(Frozen):
    """The driver the burn-in uses on GPU hosts (precompiled kmod or DKMS: the packages say which)."""

    repo_url: str = "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64"
    # Blackwell needs the open kernel modules; DKMS builds them against the installed kernel.
    packages: tuple[str, ...] = ("kernel-devel", "dkms", "nvidia-open", "nvidia-persistenced")

    @field_validator("repo_url")
    @classmethod
    def _u(cls, v: str) -> str:
        return _url(v)


class Site(Frozen):
    # A Rocky tree holding BaseOS/ and AppStream/; the default is the public vault for 9.3.
    mirror_url: str = "https://dl.rockylinux.org/vault/rocky/9.3"
    arch: str = "x86_64"
    # memtester and dkms live in EPEL.
    extra_repos: tuple[Repo, ...] = (
        Repo(name="epel", url="https://dl.fedoraproject.org/pub/epel/9/Everything/x86_64"),
    )
    nvidia: Nvidia = Nvidia()
    admin: Admin = Admin()
    root_password_hash: str | None = None  # None: root is locked
    timezone: str = "Etc/UTC"
    ntp_servers: tuple[str, ...] = ("2.rocky.pool.ntp.org",)
    boot_server_url: str = "http://127.0.0.1:8080"  # what installers reach: iPXE, kickstart, callbacks
    boot_images_dir: str | None = None  # vmlinuz and initrd.img of the install tree, served by `serve`
    console: str | None = None  # e.g. ttyS0,115200 for serial-over-LAN
    packages: tuple[str, ...] = ()  # added to the burn-in set

    @field_validator("mirror_url", "boot_server_url")
    @classmethod
    def _u(cls, v: str) -> str:
        return _url(v)

    @field_validator("root_password_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not _SHA512_CRYPT.match(v):
            raise ValueError(
                "expected a SHA-512 crypt hash ($6$salt$...; make one with `openssl passwd -6`) or null "
                "to lock root, got something else (not echoed: it may be a password)"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$", v):
            raise ValueError(f"expected a tz database name like Etc/UTC, got {v!r}")
        return v

    @field_validator("ntp_servers")
    @classmethod
    def _ntp(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for server in v:
            if not _NAME.match(server):
                raise ValueError(f"expected NTP server host names or addresses, got {server!r}")
        return v

    @field_validator("console")
    @classmethod
    def _console(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z0-9]+(,[0-9]+[a-z0-9]*)?$", v):
            raise ValueError(f"expected a kernel console like ttyS0,115200, got {v!r}")
        return v

    @property
    def baseos_url(self) -> str:
        return f"{self.mirror_url}/BaseOS/{self.arch}/os"

    @property
    def appstream_url(self) -> str:
        return f"{self.mirror_url}/AppStream/{self.arch}/os"
