"""The grammar of every text from a profile, hosts.yaml or site.yaml that reaches a generated file.

Pure. Kickstart command lines, %pre/%post shell, the iPXE script, dnsmasq's config and the ZFS
commands of the handoff are all line-based languages with their own quoting: a value that carries a
newline, a quote, `$(...)` or a `--option` changes what they mean. So each such field has a grammar,
checked once when the file is loaded; a value outside it is bad input with its file and line. The
renderers still quote (kickstart/render.py) as a second line of defence, never as the first.

Each type is `Annotated[str, AfterValidator(...)]`: the models reuse them, and a mismatch is one
`expected X, got Y` whose Y is the value's repr cut to a few dozen characters (it may be hostile,
or 64 KiB long).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

SHOWN = 60  # at most this much of a refused value is echoed back


def without_userinfo(url: str) -> str:
    """`url` with everything from its scheme to its last '@' shown as ***@: the part before an '@' may
    be a password (which may itself hold '/'), and an error message is printed and logged."""
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://", url)
    return f"{m[0] if m else ''}***@{url.rpartition('@')[2]}"


def shown(value: str) -> str:
    """The value's repr, cut short: an error names what it got without echoing a payload."""
    text = repr(without_userinfo(value) if "://" in value and "@" in value else value)
    if len(text) <= SHOWN:
        return text
    return f"{text[: SHOWN - 12]}... ({len(value)} characters)"


def _grammar(regex: str, expected: str, max_len: int) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        # fullmatch, never match + $: `$` also matches before a trailing newline.
        if len(value) > max_len or not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}, got {shown(value)}")
        return value

    return AfterValidator(check)


def _checked(test: Callable[[str], str | None], expected: str) -> AfterValidator:
    """A grammar a regex cannot say well: `test` returns the value to keep, or None to refuse it."""

    def check(value: str) -> str:
        kept = test(value) if len(value) <= 512 else None
        if kept is None:
            raise ValueError(f"expected {expected}, got {shown(value)}")
        return kept

    return AfterValidator(check)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME_RE = rf"{_LABEL}(?:\.{_LABEL})*"
HOST_NAME = "a host name (dot-separated labels of letters, digits and inner -)"
# What a URL's path may hold: the characters every renderer takes unquoted (no %, ?, &, @, $, ~).
_URL_PATH = r"(?:/[A-Za-z0-9._/+=-]*)?"


def _is_host_name(value: str) -> bool:
    return len(value) <= 253 and re.fullmatch(HOST_NAME_RE, value) is not None


def _address(value: str) -> str | None:
    """An IPv4 or IPv6 address a host can use (not 0.0.0.0, not multicast)."""
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", value):  # ipaddress takes any IPv6 scope: fe80::1%$(x)
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return None if ip.is_unspecified or ip.is_multicast else value


def _host_or_address(value: str) -> str | None:
    # A name whose last label is all digits is a mistyped address (999.0.2.11), not a host name.
    named = _is_host_name(value) and not value.rsplit(".", 1)[-1].isdigit()
    return value if named or _address(value) else None


def _url(value: str) -> str | None:
    """scheme://host[:port][/path]; never userinfo (a password in a URL ends up printed and logged)."""
    m = re.fullmatch(rf"(?:https?|ftp)://(?P<host>[^/:]+)(?::(?P<port>[0-9]{{1,5}}))?{_URL_PATH}", value)
    if m is None or not _host_or_address(m["host"]):
        return None
    if m["port"] is not None and not 0 < int(m["port"]) < 65536:
        return None
    return value.rstrip("/")


def _cidr(value: str) -> str:
    """An IPv4 host address with its prefix, e.g. 10.0.2.11/24: a usable host of that network."""
    if len(value) > 18 or not re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}", value):
        raise ValueError(f"expected an IPv4 address in CIDR form like 10.0.1.11/24, got {shown(value)}")
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError:
        raise ValueError(
            f"expected an IPv4 address (four numbers 0-255) with a prefix of 1-32, got {shown(value)}"
        ) from None
    net, ip = iface.network, iface.ip
    unusable = net.prefixlen == 0 or ip.is_unspecified or ip.is_multicast or ip.is_reserved
    if unusable or (net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address)):
        raise ValueError(
            f"expected a host address of its network (not the network, broadcast, 0.0.0.0, multicast "
            f"or reserved address), got {shown(value)}"
        )
    return value


def _gpu_name(value: str) -> str | None:
    printable = all(" " <= c <= "~" and c not in "\"'`$\\" for c in value)
    return value if printable and value[:1].isalnum() and value == value.strip() else None


HostName = Annotated[str, _checked(lambda v: v if _is_host_name(v) else None, HOST_NAME)]
HostOrAddress = Annotated[str, _checked(_host_or_address, "a host name or an IP address")]
IpAddress = Annotated[str, _checked(_address, "an IP address like 10.0.1.53")]
Url = Annotated[
    str,
    _checked(_url, "an http, https or ftp URL: host[:port] and a path of letters, digits and ._/+=-"),
]
Cidr = Annotated[str, AfterValidator(_cidr)]
InterfaceName = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "an interface name (letters, digits, _ . -)", 15)
]
PackageName = Annotated[
    str,
    _grammar(
        r"(?:@\^?|-)?[A-Za-z0-9_][A-Za-z0-9._+-]*",
        "a package name (letters, digits, . _ + -; @group or -excluded)",
        128,
    ),
]
TunedProfile = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9._-]*", "one tuned profile name (letters, digits, . _ -)", 64)
]
KernelArg = Annotated[
    str,
    _grammar(
        r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:=[A-Za-z0-9_.:/,+=-]*)?",
        "a kernel argument key or key=value (letters, digits, _ . - in the key; also : / , + = in the value)",
        256,
    ),
]
OsName = Annotated[
    str,
    _grammar(
        r"[A-Za-z0-9][A-Za-z0-9._+-]*(?: [A-Za-z0-9._+-]+)*",
        "an OS name (words of letters, digits, . _ + - separated by single spaces)",
        64,
    ),
]
OsVersion = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9._-]*", "an OS version (letters, digits, . _ -)", 32)
]
GpuName = Annotated[
    str,
    _checked(
        lambda v: _gpu_name(v) if len(v) <= 96 else None,
        "a GPU name of printable ASCII without quotes, backticks, $ or \\ (at most 96)",
    ),
]
Arch = Annotated[
    str, _grammar(r"x86_64|aarch64|ppc64le|s390x", "one of x86_64, aarch64, ppc64le or s390x", 16)
]
RepoName = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a repository id (letters, digits, . _ -)", 64)
]
Timezone = Annotated[
    str,
    _grammar(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*", "a tz database name like Etc/UTC", 64),
]
UserName = Annotated[
    str, _grammar(r"[a-z_][a-z0-9_-]*", "a POSIX user name ([a-z_][a-z0-9_-]*, at most 32)", 32)
]
ProfileName = Annotated[
    str, _grammar(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a profile name (letters, digits, . _ -)", 64)
]
ZfsName = Annotated[
    str, _grammar(r"[A-Za-z][A-Za-z0-9_.-]*", "a ZFS pool name (a letter, then letters, digits, _ . -)", 64)
]
Word = Annotated[str, _grammar(r"[a-z0-9]+", "a word of lower-case letters and digits", 16)]


# Two rules between fields of different files, shared by `lint` (an error finding) and the
# kickstart, iPXE and dnsmasq renderers (bad input): one rule, so lint never passes a host the
# kickstart then refuses.


def boot_mac_problem(boot_mac: str, macs: list[str]) -> str | None:
    """Why a host's boot_mac is wrong, or None: it must be one of its interfaces' MACs."""
    if boot_mac in macs:
        return None
    return f"expected the MAC of one of the host's interfaces ({', '.join(macs) or 'none'}), got {boot_mac}"


def ssh_user_problem(ssh_user: str, admin: str) -> str | None:
    """Why a host's ssh_user is wrong, or None: the kickstart gives the operators' keys to root and
    the site's admin only, so the controller can log in as no one else."""
    if ssh_user in ("root", admin):
        return None
    return (
        f"expected root or the site's admin {admin!r} (the accounts the kickstart gives the operators' "
        f"keys), got {shown(ssh_user)}"
    )
