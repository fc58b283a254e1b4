"""Lay a spec out as text through the package's Jinja2 templates.

Pure apart from reading the templates shipped inside this package. StrictUndefined: a field a
template names but the spec lacks is an error at render time, never an empty string in a kickstart.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict
from functools import cache
from typing import Any

import jinja2

from kickstart.spec import InstallSpec

# What may reach a shell line or a URL unquoted: tokens, host names, MACs, by-id names.
_SAFE = re.compile(r"^[A-Za-z0-9._:/+=-]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
# What a kickstart command line takes unquoted; anything else is double-quoted for its shlex.
_KS_BARE = re.compile(r"[A-Za-z0-9._:/+=,@%-]+")
# Kickstart, %pre/%post and iPXE are line-based: a control character (a newline above all) would
# start a new command or section whatever the quoting, so the filters refuse it instead of quoting.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A package to install (no @group, no -exclusion): one %packages line and one %post shell word.
_PACKAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")


class RenderError(ValueError):
    """A spec that cannot be laid out safely (the caller maps it to its own error)."""


def _short(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:48]}... ({len(value)} characters)"


def one_line(value: object) -> str:
    """Jinja2 filter `line`: the value as it is, if it is one line that cannot open a section."""
    text = str(value)
    if _CONTROL.search(text) or text.startswith("%"):
        raise RenderError(f"template value: expected one line of printable text, got {_short(text)}")
    return text


def shell_word(value: object) -> str:
    """Jinja2 filter `sh`: one shell word (shlex.quote) for a %pre/%post line."""
    return shlex.quote(one_line(value))


def ks_quoted(value: object) -> str:
    """Jinja2 filter `ksq`: always double-quoted, as pykickstart's shlex reads it back."""
    text = one_line(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ks_word(value: object) -> str:
    """Jinja2 filter `ks`: one kickstart argument, bare when plain (the goldens), quoted otherwise.

    A leading `-` is refused: quoting does not stop optparse from reading it as an option.
    """
    text = one_line(value)
    if text.startswith("-"):
        raise RenderError(f"template value: expected no leading '-' on a kickstart line, got {_short(text)}")
    return text if _KS_BARE.fullmatch(text) else ks_quoted(text)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kickstart", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(sh=shell_word, ks=ks_word, ksq=ks_quoted, line=one_line)
    return env


def render_template(name: str, **context: Any) -> str:
    try:
        return environment().get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {name}: {exc.message}") from None


def check_token(token: str) -> None:
    if not _TOKEN.match(token):
        raise RenderError("callback token: expected 8-128 URL-safe characters, got something else")


def check_safe(field: str, value: str) -> None:
    if not _SAFE.match(value):
        raise RenderError(f"{field}: expected letters, digits and ._:/+=- only, got {value!r}")


def _check(spec: InstallSpec) -> None:
    check_token(spec.callback.token)
    check_safe("hostname", spec.hostname)
    check_safe("callback base URL", spec.callback.base_url)
    if len(spec.boot_disks) != 2:
        raise RenderError(f"boot disks: expected 2 for the RAID1 mirror, got {len(spec.boot_disks)}")
    if len(set(spec.boot_disks)) != 2:
        raise RenderError(f"boot disks: expected two different disks, got {spec.boot_disks[0]} twice")
    for disk in spec.boot_disks:
        if not disk.startswith("disk/by-id/"):
            raise RenderError(f"boot disk: expected a disk/by-id/ name, got {disk!r}")
        check_safe("boot disk", disk)
    for key in (*spec.admin_ssh_keys, *spec.root_ssh_keys):
        if '"' in key or "\n" in key:
            raise RenderError("admin SSH key: expected one line without double quotes")
    if not spec.admin_ssh_keys:
        raise RenderError("admin SSH keys: expected at least one operator key, got none")
    if spec.gpu and spec.gpu.nccl:
        for pkg in (*spec.gpu.nccl.packages, spec.gpu.nccl.tests_package, spec.gpu.nccl.binary):
            if not _PACKAGE.fullmatch(pkg):
                raise RenderError(
                    f"NCCL package: expected a package name (letters, digits, ._+-), got {pkg!r}"
                )
    for arg in spec.kernel_args:
        if '"' in arg or " " in arg:
            raise RenderError(f"kernel argument: expected no spaces or quotes, got {arg!r}")


def install_record(spec: InstallSpec) -> str:
    """What the installed host keeps about its install (/etc/inferno/install.json): no secrets."""
    record: dict[str, Any] = {
        "host": spec.hostname,
        "profile": spec.profile,
        "os": f"{spec.os_name} {spec.os_version}",
        "boot_disks": list(spec.boot_disks),
        "kernel_args": list(spec.kernel_args),
        "tuned_profile": spec.tuned_profile,
        "gpu_driver": None,
    }
    if spec.gpu:
        gpu = asdict(spec.gpu)
        record["gpu_driver"] = {"mode": str(spec.gpu.mode), "packages": gpu["packages"]}
        if spec.gpu.nccl:
            nccl = spec.gpu.nccl
            record["nccl"] = {"packages": [*nccl.packages, nccl.tests_package], "binary": nccl.binary}
    return json.dumps(record, indent=2, sort_keys=True)


def render_kickstart(spec: InstallSpec) -> str:
    _check(spec)
    return render_template("ks.cfg.j2", spec=spec, install_record=install_record(spec))
