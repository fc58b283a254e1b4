"""Hostile text in every field of a profile, hosts.yaml and site.yaml that reaches a generated file
(kickstart, iPXE script, %pre/%post shell, the handoff's zpool commands).

Through the CLI, in-process: each value is either refused by `lint` and `kickstart` (exit 2, one line
naming the field, never echoing more than a few dozen characters of it) or rendered into a kickstart
that ksvalidator accepts, whose %pre/%post bodies pass `bash -n`, and where the value is nowhere but
inside a quoted literal or a comment.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.cli import main as cli
from provision.model.yamlfile import dotted
from tests.conftest import PROFILES
from tests.test_kickstart import parse

KSVALIDATOR = Path(sys.executable).parent / "ksvalidator"
HOST = "inferno-host-compute-1"  # the GPU profile: every template partial is rendered
PROFILE = "circle-2-lust.yaml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLRr3KCeeGABSsmWhooIzaAHB3y5si+qAdxi7xA4DC6"

# Each carries "pwn" so a rendered copy can be looked for.
PAYLOADS = {
    "double-quote": 'pwn"x',
    "single-quote": "pwn'x",
    "command-substitution": "pwn$(touch /tmp/pwned)",
    "backticks": "pwn`touch /tmp/pwned`",
    "newline-section": "pwn\n%post\ntouch /tmp/pwned\n%end",
    "section-header": "%post --nochroot pwn",
    "nul": "pwn\x00x",
    "64KiB": "pwn" + "x" * 65536,
    "kickstart-option": "10.0.2.1 --bootproto=dhcp --hostname=pwn",
    "shell-operators": "pwn;reboot && true | cat # x",
}


@dataclass(frozen=True)
class Field:
    file: str
    path: tuple[str | int, ...]
    wrap: Callable[[str], Any] = lambda p: p  # the payload as the field's value

    @property
    def name(self) -> str:
        return f"{self.file}:{dotted(self.path)}"


def _disk(part: str) -> Callable[[str], Any]:
    # Without a wwn the by-id name is made of model and serial: both reach the kickstart.
    return lambda p: {"model": "M", "serial": "S1", part: p}


IFACE = ("hosts", 0, "interfaces", 0)
FIELDS = [
    Field(PROFILE, ("name",)),
    Field(PROFILE, ("gpus", "name")),
    Field(PROFILE, ("platform", "os", "name")),
    Field(PROFILE, ("platform", "os", "version")),
    Field(PROFILE, ("platform", "os", "tuned_profile")),
    Field(PROFILE, ("platform", "os", "kernel_args", 0)),
    Field(PROFILE, ("platform", "zfs", "name")),
    Field(PROFILE, ("platform", "zfs", "layout")),
    Field("hosts.yaml", ("hosts", 0, "name")),
    Field("hosts.yaml", (*IFACE, "name")),
    Field("hosts.yaml", (*IFACE, "mac")),
    Field("hosts.yaml", (*IFACE, "address")),
    Field("hosts.yaml", (*IFACE, "gateway")),
    Field("hosts.yaml", (*IFACE, "nameservers", 0)),
    Field("hosts.yaml", ("hosts", 0, "boot_mac")),
    Field("hosts.yaml", ("hosts", 0, "ssh_user")),
    Field("hosts.yaml", ("hosts", 0, "address")),
    Field("hosts.yaml", ("hosts", 0, "boot_disks", 0), _disk("model")),
    Field("hosts.yaml", ("hosts", 0, "boot_disks", 0), _disk("serial")),
    Field("site.yaml", ("mirror_url",)),
    Field("site.yaml", ("arch",)),
    Field("site.yaml", ("extra_repos", 0, "name")),
    Field("site.yaml", ("extra_repos", 0, "url")),
    Field("site.yaml", ("nvidia", "repo_url")),
    Field("site.yaml", ("nvidia", "packages", 0)),
    Field("site.yaml", ("packages", 0)),
    Field("site.yaml", ("admin", "name")),
    Field("site.yaml", ("admin", "ssh_keys", 0), lambda p: f"{KEY} {p}"),
    Field("site.yaml", ("root_password_hash",)),
    Field("site.yaml", ("timezone",)),
    Field("site.yaml", ("ntp_servers", 0)),
    Field("site.yaml", ("boot_server_url",)),
    Field("site.yaml", ("console",)),
]
_ERROR = re.compile(r"provision: [^\n]+?:\d+: (?P<field>[^\s:]+): expected [^\n]+\n")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster
_QUOTED = re.compile(r"""("(?:[^"\\]|\\.)*")|'[^']*'""")


def _seed() -> dict[str, Any]:
    """The shipped files cut to the one host and its profile, without the profile's acceptance
    policy and timeouts (they have defaults and reach no generated file): a third of the time."""
    data = {
        name: yaml.safe_load((PROFILES / name).read_text()) for name in (PROFILE, "hosts.yaml", "site.yaml")
    }
    data["hosts.yaml"]["hosts"] = [h for h in data["hosts.yaml"]["hosts"] if h["name"] == HOST]
    for optional in ("acceptance", "timeouts"):
        data[PROFILE].pop(optional, None)
    data["site.yaml"].setdefault("packages", ["hwloc"])
    return data


def _write(path: Path, data: Any) -> None:
    path.write_text(yaml.dump(data, Dumper=_DUMPER, sort_keys=False))


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _cli(capsys: pytest.CaptureFixture[str], directory: Path, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["--profiles", str(directory), "--state", str(directory.parent / "state"), *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _names(field: Field, named: str) -> bool:
    """Whether an error's FIELD is this field (hosts are named by index in the load, by name later)."""
    named = named.replace(f"[{HOST}]", "[0]")
    key = next(part for part in reversed(field.path) if isinstance(part, str))
    return dotted(field.path).startswith(named) and key in named


def _refusal(field: Field, code: int, out: str, err: str) -> str | None:
    """What is wrong with a refusal, or None when it names the field in one short line."""
    if code != 2:
        return f"expected exit 0 or 2 (bad input), got exit {code}: {err[:300]!r}"
    if out:  # lint's findings: one of its errors names the field
        fields = re.findall(r": error: (\S+): ", out)
        return None if any(_names(field, f) for f in fields) else f"no error names the field: {out[:300]!r}"
    m = _ERROR.fullmatch(err)
    if m is None or len(err) > 600:
        return f"expected one short line 'provision: FILE:LINE: FIELD: expected ...', got {err[:300]!r}"
    return None if _names(field, m["field"]) else f"expected {dotted(field.path)} named, got {m['field']}"


def _sections(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line.lstrip().startswith("%")]


def _exposed(text: str, payload: str, in_shell: bool) -> list[str]:
    """Lines where the payload stands outside a quoted literal or a comment."""
    out = []
    heredoc = None  # inside <<'END' nothing is expanded: it is one quoted literal
    for line in text.splitlines():
        if heredoc is not None:
            heredoc = None if line == heredoc else heredoc
            continue
        if line.lstrip().startswith("#"):
            continue
        opened = re.search(r"<<'(\w+)'$", line)
        heredoc = opened[1] if in_shell and opened else None
        # A shell expands inside "...": there only '...' hides the payload.
        bare = _QUOTED.sub(lambda m: m.group(1) if in_shell and m.group(1) else "", line)
        if payload in bare:
            out.append(line)
    return out


def _outside_scripts(ks: str) -> str:
    """The kickstart's commands and %packages: every line but the %pre/%post/%onerror bodies."""
    out, in_script = [], False
    for line in ks.splitlines():
        head = line.split()[0] if line.strip() else ""
        if head in ("%pre", "%post", "%onerror"):
            in_script = True
        elif head == "%end":
            in_script = False
        elif not in_script:
            out.append(line)
    return "\n".join(out)


def _rendered_problems(ks: str, ipxe: str, payload: str, baseline: list[str]) -> list[str]:
    problems = []
    if _sections(ks) != baseline:
        problems.append(f"sections changed: {_sections(ks)}")
    if "\x00" in ks or "\x00" in ipxe:
        problems.append("a NUL reached the output")
    handler = parse(ks).handler
    bodies = [s.script for s in handler.scripts]
    body_text = "\n".join(bodies)
    commands = _outside_scripts(ks)
    problems += [f"outside quotes: {line[:120]!r}" for line in _exposed(commands, payload, in_shell=False)]
    problems += [f"outside quotes in a script: {line[:120]!r}" for line in _exposed(body_text, payload, True)]
    if payload in ipxe:
        problems.append("the payload reached the iPXE script")
    for body in bodies:
        check = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            problems.append(f"bash -n: {check.stderr.strip()[:200]}")
    return problems


def _case(
    capsys: pytest.CaptureFixture[str], d: Path, field: Field, payload: str, baseline: list[str]
) -> tuple[list[str], str | None]:
    """Problems with one value in one field; and the kickstart when one was rendered."""
    host = payload if field.path == ("hosts", 0, "name") else HOST
    problems: list[str] = []
    code, out, err = _cli(capsys, d, "lint")
    if code != 0:
        problems += [f"lint: {p}" for p in [_refusal(field, code, out, err)] if p]
    code, ks, err = _cli(capsys, d, "kickstart", host)
    if code != 0:
        problems += [f"kickstart: {p}" for p in [_refusal(field, code, "", err)] if p]
        return problems, None
    code, ipxe, err = _cli(capsys, d, "kickstart", host, "--ipxe")
    if code != 0:
        problems += [f"--ipxe: {p}" for p in [_refusal(field, code, "", err)] if p]
    return problems + _rendered_problems(ks, ipxe, payload, baseline), ks


def test_hostile_text_in_every_field_is_refused_or_rendered_harmless(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = _seed()
    d = tmp_path / "profiles"
    d.mkdir()
    for name, data in seed.items():
        _write(d / name, data)
    code, baseline_ks, err = _cli(capsys, d, "kickstart", HOST)
    assert (code, err) == (0, "")
    baseline = _sections(baseline_ks)
    failures: list[str] = []
    accepted: list[Path] = []
    for field in FIELDS:
        for label, payload in PAYLOADS.items():
            data = copy.deepcopy(seed[field.file])
            _set(data, field.path, field.wrap(payload))
            _write(d / field.file, data)
            problems, ks = _case(capsys, d, field, payload, baseline)
            failures += [f"{field.name} <- {label}: {p}" for p in problems]
            if ks is not None:
                accepted.append(tmp_path / f"accepted-{len(accepted)}.ks")
                accepted[-1].write_text(ks)
        _write(d / field.file, seed[field.file])
    assert not failures, "\n".join(failures)
    assert accepted, "no hostile value was rendered: the quoting half of the test ran on nothing"
    # One ksvalidator for every kickstart that was rendered.
    argv = [str(KSVALIDATOR), "-v", "RHEL9", *map(str, accepted)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
