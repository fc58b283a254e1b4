"""Secrets stay secret, files stay put: a BMC URL with a password is refused without echoing it, a
field that may hold a secret is described by its type only, credential files are read bounded (and a
loose mode is said), files holding a token are written 0600 by replace and never through a symlink,
and no file a person names may be a FIFO or a device."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.model.catalog import load_catalog
from tests.conftest import PROFILES, REPO
from tests.support.mockup import Faults, Style, build_tree, write_tree
from tests.support.procs import free_port
from tests.support.redfish_rig import set_bmc, static

FIXTURE = Path(__file__).parent / "data" / "profiles"
HOST = "inferno-host-compute-1"
MASTER = "inferno-host-master"
SECRET = "hunter2"


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    return d


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def run_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """The real `provision`, with 2 GiB of address space: a reader without a bound dies, not the box."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "provision", *argv],
        capture_output=True, text=True, cwd=REPO, timeout=20, check=False, preexec_fn=limit,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://admin:hunter2@10.0.1.21", "https://***@10.0.1.21"),
        ("https://admin:hun/ter2@10.0.1.21:8443", "https://***@10.0.1.21:8443"),  # '/' in the password
        ("admin:hunter2@10.0.1.21", "***@10.0.1.21"),
    ],
)
@pytest.mark.parametrize("command", [["lint"], ["show", HOST], ["show", HOST, "--json"], ["inspect", HOST]])
def test_a_bmc_url_with_a_password_is_refused_and_never_printed(
    profiles: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
    shown: str,
    command: list[str],
) -> None:
    hosts = profiles / "hosts.yaml"
    hosts.write_text(hosts.read_text().replace("url: https://10.0.1.21", f"url: {url}"))
    rc, out, err = run_cli(["--profiles", str(profiles), "--state", str(tmp_path / "s"), *command], capsys)
    assert (rc, out) == (2, "")
    assert err == (
        f"provision: {hosts}:14: hosts[0].bmc.url: expected a URL without user:password@ "
        f"(see bmc.credentials), got {shown!r}\n"
    )
    assert "hun" not in err and "admin" not in err
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and "s" in p.relative_to(tmp_path).parts[:1]]
    assert not any(SECRET.encode() in p.read_bytes() for p in stored)


@pytest.mark.parametrize("field", ["mirror_url", "boot_server_url"])
def test_a_site_url_with_a_password_is_refused_without_echoing_it(
    profiles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    (profiles / "site.yaml").write_text(f"{field}: http://admin:hun/ter2@10.0.1.5:8080/x\n")
    rc, out, err = run_cli(["--profiles", str(profiles), "--state", str(tmp_path / "s"), "lint"], capsys)
    assert (rc, out) == (2, "")
    assert err.startswith(f"provision: {profiles}/site.yaml:1: {field}: expected ")
    assert err.endswith(", got 'http://***@10.0.1.5:8080/x'\n")
    assert "hun" not in err and "admin" not in err


SITE = "root_password_hash: null\n"
CASES = [
    ("hosts.yaml", "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: {user: admin, password: hunter2}",
     "hosts.yaml:16: hosts[0].bmc.credentials: expected text, got a mapping"),
    ("hosts.yaml", "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: [admin, hunter2]",
     "hosts.yaml:16: hosts[0].bmc.credentials: expected text, got a list"),
    ("hosts.yaml", "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: 4815162342",
     "hosts.yaml:16: hosts[0].bmc.credentials: expected text, got a number"),
    ("hosts.yaml", "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: {4815162342: x}",
     "hosts.yaml:16: hosts[0].bmc.credentials: expected a text key, got a number"),
    ("site.yaml", SITE, "root_password_hash: {hash: hunter2}\n",
     "site.yaml:1: root_password_hash: expected text, got a mapping"),
    ("site.yaml", SITE, "root_password_hash: [hunter2]\n",
     "site.yaml:1: root_password_hash: expected text, got a list"),
    ("site.yaml", SITE, "root_password_hash: 4815162342\n",
     "site.yaml:1: root_password_hash: expected text, got a number"),
    ("site.yaml", SITE, "- root_password_hash: hunter2\n",
     "site.yaml:1: (top level): expected a mapping, got list"),
]  # fmt: skip
IDS = ["creds-mapping", "creds-list", "creds-number", "creds-key", "hash-mapping", "hash-list", "hash-number",
       "site-list"]  # fmt: skip


@pytest.mark.parametrize(("name", "old", "new", "message"), CASES, ids=IDS)
def test_a_field_that_may_hold_a_secret_is_described_by_its_type_only(
    profiles: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    old: str,
    new: str,
    message: str,
) -> None:
    path = profiles / name
    text = path.read_text() if path.exists() else SITE
    path.write_text(text.replace(old, new, 1))
    rc, out, err = run_cli(["--profiles", str(profiles), "--state", str(tmp_path / "s"), "lint"], capsys)
    assert (rc, out, err) == (2, "", f"provision: {profiles}/{message}\n")
    assert SECRET not in err and "4815162342" not in err


def _power(profiles: Path, tmp_path: Path, **bmc: object) -> subprocess.CompletedProcess[str]:
    # Nothing listens on the port: reading the credentials is all the command does before it fails.
    set_bmc(profiles, MASTER, url=f"http://127.0.0.1:{free_port()}", attempts=1, **bmc)
    return run_process(
        ["--profiles", str(profiles), "--state", str(tmp_path / "s"), "power", MASTER, "status"]
    )


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "5-kib"])
def test_a_credentials_file_is_read_bounded_and_regular_only(
    profiles_copy: Path, tmp_path: Path, kind: str
) -> None:
    creds = tmp_path / "creds"
    if kind == "fifo":
        os.mkfifo(creds)  # no writer ever comes
    elif kind == "5-kib":
        creds.write_text(f"admin:{SECRET}" + "x" * 5000)
        creds.chmod(0o600)
    path = Path("/dev/zero") if kind == "dev-zero" else creds
    proc = _power(profiles_copy, tmp_path, credentials=f"file:{path}")
    got = {"dev-zero": "a character device", "fifo": "a FIFO", "5-kib": "5013 bytes"}[kind]
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"provision: bmc.credentials: expected a regular file {path} of at most 4 KiB, got {got}\n"
    )


def test_a_credentials_file_others_can_read_is_used_with_a_warning(
    profiles_copy: Path, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    creds.write_text(f"admin:{SECRET}\n")
    creds.chmod(0o644)
    proc = _power(profiles_copy, tmp_path, credentials=f"file:{creds}")
    assert proc.returncode == 3  # it was used: the BMC (absent) is what failed
    lines = proc.stderr.splitlines()
    assert lines[0] == f"bmc.credentials: {creds} is readable by group or others (mode 0644): chmod 600 it"
    assert SECRET not in proc.stderr
    creds.chmod(0o600)
    proc = _power(profiles_copy, tmp_path, credentials=f"file:{creds}")
    assert proc.returncode == 3 and "readable by group or others" not in proc.stderr


def test_a_ca_bundle_that_is_a_fifo_is_refused(profiles_copy: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ca.pem")
    (tmp_path / "creds").write_text("admin:x\n")
    (tmp_path / "creds").chmod(0o600)
    proc = _power(
        profiles_copy, tmp_path, credentials=f"file:{tmp_path / 'creds'}", verify_tls=str(tmp_path / "ca.pem")
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        f"provision: bmc.verify_tls: expected a CA bundle file, got '{tmp_path / 'ca.pem'}' (a FIFO)\n",
    )


def kickstart(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    base = [
        "--profiles",
        str(PROFILES),
        "--state",
        str(tmp_path / "s"),
        "kickstart",
        HOST,
        "--token",
        "T0K3N-for-this-test",
    ]
    return run_cli([*base, *extra], capsys)


def test_kickstart_output_replaces_a_wider_file_with_a_0600_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ks.cfg"
    out.write_text("an older kickstart\n")
    out.chmod(0o644)
    rc, _, err = kickstart(tmp_path, capsys, "-o", str(out))
    assert rc == 0, err
    assert out.stat().st_mode & 0o777 == 0o600  # the token is inside
    assert "T0K3N-for-this-test" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_kickstart_output_is_never_written_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, link = tmp_path / "elsewhere", tmp_path / "ks.cfg"
    target.write_text("not yours\n")
    link.symlink_to(target)
    rc, out, err = kickstart(tmp_path, capsys, "-o", str(link))
    assert (rc, out) == (2, "")
    assert err == (
        f"provision: {link}: expected a regular file or a new one, "
        "got a symbolic link (neither followed nor replaced)\n"
    )
    assert target.read_text() == "not yours\n" and link.is_symlink()
    assert kickstart(tmp_path, capsys, "-o", os.devnull)[0] == 2  # nor over a device


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["kickstart", MASTER, "--inventory", "{fifo}"],
         "{fifo}: expected a hardware inventory JSON, a regular file of at most 1 MiB, got a FIFO"),
        (["burnin", "--local", "--plan", "{fifo}"],
         "--plan {fifo}: expected a regular plan file of at most 1 MiB, got a FIFO"),
        (["burnin", MASTER, "--identity", "{fifo}"],
         "--identity {fifo}: expected an SSH private key file, got a FIFO"),
    ],
    ids=["kickstart-inventory", "burnin-plan", "burnin-identity"],
)  # fmt: skip
def test_a_file_named_on_the_command_line_that_is_a_fifo_is_refused(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = [a.format(fifo=fifo) for a in argv]
    proc = run_process(["--profiles", str(PROFILES), "--state", str(tmp_path / "s"), *args])
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"provision: {message.format(fifo=fifo)}\n"


def test_run_documents_are_readable_by_their_owner_only(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERNO_BMC_MASTER", f"admin:{SECRET}")
    catalog = load_catalog(PROFILES)
    entry = catalog.host(MASTER)
    tree = write_tree(
        build_tree(catalog.profile_of(entry), entry, Style.supermicro, Faults()), tmp_path / "tree"
    )
    state = tmp_path / "state"
    with static(tree, tmp_path / "static.log") as svc:
        set_bmc(profiles_copy, MASTER, url=svc.url, retry_delay_s=0.05)
        argv = ["--profiles", str(profiles_copy), "--state", str(state), "inspect", MASTER, "--json"]
        rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert json.loads(out)["findings"]
    docs = sorted(p for p in (state / "runs").rglob("*") if p.is_file())
    assert "findings-redfish.json" in {p.name for p in docs}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in docs} == {p.name: "0o600" for p in docs}
