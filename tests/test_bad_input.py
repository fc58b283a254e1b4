"""Every kind of bad profile or inventory gives one exact line (file, line, field, expected, got),
exit 2, and no traceback: through the loader, the CLI in-process, and the real `provision` script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import REPO

LUST = "circle-2-lust.yaml"
HOSTS = "hosts.yaml"
PROVISION = Path(sys.executable).parent / "provision"
FIXTURE = Path(__file__).parent / "data" / "profiles"  # frozen: the table names its lines


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Path], object]
    message: str  # {d} stands for the profiles directory
    real_process: bool = False  # also run the installed `provision` script


def replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        text = (d / name).read_text()
        if old not in text:
            raise AssertionError(f"{old!r} is not in the shipped {name}: the table is stale")
        (d / name).write_text(text.replace(old, new, 1))

    return edit


def write(name: str, content: bytes) -> Callable[[Path], object]:
    return lambda d: (d / name).write_bytes(content)


def remove(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


CASES = [
    Case(
        "waiver-plain-string",
        replace(LUST, "\nacceptance:\n", "\nacceptance:\n  not_required: [cpu_temperature]\n"),
        "{d}/circle-2-lust.yaml:103: acceptance.not_required: expected a list of {{check: <check id>, "
        "component: <optional component or prefix>, reason: <why>}}, got the old plain check-name form",
    ),
    Case(
        "waiver-check-reason-map",
        replace(LUST, "\nacceptance:\n", "\nacceptance:\n  not_required: {cpu_temperature: no sensor}\n"),
        "{d}/circle-2-lust.yaml:103: acceptance.not_required: expected a list of {{check: <check id>, "
        "component: <optional component or prefix>, reason: <why>}}, got the old plain check-name form",
    ),
    Case(
        "waiver-without-reason",
        replace(LUST, "\nacceptance:\n", "\nacceptance:\n  not_required: [{check: cpu_temperature}]\n"),
        "{d}/circle-2-lust.yaml:103: acceptance.not_required[0].reason: "
        "expected a value (the field is required), got nothing",
    ),
    Case(
        "yaml-syntax",
        replace(LUST, "cpu:\n  model", "cpu: [\n  model"),
        "{d}/circle-2-lust.yaml:12: expected valid YAML, got expected ',' or ']', but got ':'",
        real_process=True,
    ),
    Case(
        "yaml-tab",
        replace(HOSTS, "    profile: circle-2-lust", "\tprofile: circle-2-lust"),
        "{d}/hosts.yaml:5: expected valid YAML, got found character '\\t' that cannot start any token",
    ),
    Case(
        "unknown-key",
        replace(LUST, "  sockets: 2\n", "  sockets: 2\n  cache_mb: 384\n"),
        "{d}/circle-2-lust.yaml:14: cpu.cache_mb: expected only known fields, got unknown field",
        real_process=True,
    ),
    Case(
        "wrong-type",
        replace(LUST, "  sockets: 2\n", "  sockets: two\n"),
        '{d}/circle-2-lust.yaml:13: cpu.sockets: expected an integer, got "two"',
    ),
    Case(
        "bad-unit",
        replace(LUST, "  memory_mib: 97887", "  memory_mib: 96GB"),
        "{d}/circle-2-lust.yaml:43: gpus.memory_mib: expected an integer in MiB "
        '(the unit is in the field\'s name), got "96GB"',
        real_process=True,
    ),
    Case(
        "bad-unit-duration",
        replace(LUST, "{suite: gpu, duration_s: 30}", "{suite: gpu, duration_s: 30s}"),
        "{d}/circle-2-lust.yaml:115: burnin.quick.suites[4].duration_s: expected an integer in seconds "
        '(the unit is in the field\'s name), got "30s"',
    ),
    Case(
        "negative-count",
        replace(LUST, "gpus:\n  count: 4", "gpus:\n  count: -4"),
        "{d}/circle-2-lust.yaml:37: gpus.count: expected a value > 0, got -4",
        real_process=True,
    ),
    Case(
        "float-for-int",
        replace(LUST, "  tdp_w: 400\n", "  tdp_w: 400.5\n"),
        "{d}/circle-2-lust.yaml:18: cpu.tdp_w: expected an integer in watts "
        "(the unit is in the field's name), got 400.5",
    ),
    Case(
        "bool-for-int",
        replace(LUST, "  sockets: 2\n", "  sockets: true\n"),
        "{d}/circle-2-lust.yaml:13: cpu.sockets: expected an integer, got true",
    ),
    Case(
        "bad-enum",
        replace(LUST, "interface: sata", "interface: scsi"),
        "{d}/circle-2-lust.yaml:58: storage[0].interface: expected one of 'sata' or 'nvme', got \"scsi\"",
        real_process=True,
    ),
    Case(
        "bad-taint-effect",
        replace(LUST, "effect: NoSchedule", "effect: NoScheduleAtAll"),
        "{d}/circle-2-lust.yaml:91: platform.taints[0].effect: expected one of 'NoSchedule', "
        "'PreferNoSchedule' or 'NoExecute', got \"NoScheduleAtAll\"",
    ),
    Case(
        "bad-suite",
        replace(LUST, "{suite: gpu, duration_s: 30}", "{suite: disk, duration_s: 30}"),
        "{d}/circle-2-lust.yaml:115: burnin.quick.suites[4].suite: expected one of 'cpu', 'memory', "
        "'nvme', 'boot_disks', 'gpu' or 'soak', got \"disk\"",
    ),
    Case(
        "percent-over-100",
        replace(LUST, "reserved_cpu_pct: 10", "reserved_cpu_pct: 150"),
        "{d}/circle-2-lust.yaml:93: platform.reserved_cpu_pct: expected a value <= 100.0, got 150",
    ),
    Case(
        "out-of-range",
        replace(LUST, "dcgm_diag_level: 1", "dcgm_diag_level: 5"),
        "{d}/circle-2-lust.yaml:51: gpus.dcgm_diag_level: expected a value <= 4, got 5",
    ),
    Case(
        "missing-field",
        replace(LUST, "  tdp_w: 400\n", ""),
        "{d}/circle-2-lust.yaml:10: cpu.tdp_w: expected a value (the field is required), got nothing",
        real_process=True,
    ),
    Case(
        "duplicate-key",
        replace(LUST, "  sockets: 2\n", "  sockets: 2\n  sockets: 1\n"),
        "{d}/circle-2-lust.yaml:14: cpu.sockets: expected each key once, got a duplicate of line 13",
        real_process=True,
    ),
    Case(
        "non-text-key",
        replace(LUST, "memory:\n  dimm_count: 24", "memory:\n  24: x\n  dimm_count: 24"),
        "{d}/circle-2-lust.yaml:24: memory: expected a text key, got 24",
    ),
    Case(
        "union-option",
        replace(LUST, "options: {destructive: true}", "options: {destructive: [1]}"),
        "{d}/circle-2-lust.yaml:123: burnin.acceptance.suites[2].options.destructive: "
        "expected text, an integer, a number or true or false, got [1]",
    ),
    Case(
        "profile-name-not-file-name",
        replace(LUST, "name: circle-2-lust", "name: circle-2-lusty"),
        "{d}/circle-2-lust.yaml:3: name: expected 'circle-2-lust' (the file's name), got 'circle-2-lusty'",
        real_process=True,
    ),
    Case(
        "profile-top-level-list",
        write(LUST, b"- a\n- b\n"),
        "{d}/circle-2-lust.yaml:1: (top level): expected a mapping, got list",
    ),
    Case(
        "profile-empty",
        write(LUST, b""),
        "{d}/circle-2-lust.yaml:1: (top level): expected a profile mapping, got an empty file",
    ),
    Case(
        "profile-not-utf8",
        write(LUST, b"name: \xff\xfe\n"),
        "{d}/circle-2-lust.yaml: expected a readable UTF-8 YAML file, got 'utf-8' codec can't decode "
        "byte 0xff in position 6: invalid start byte",
    ),
    Case(
        "bad-mac",
        replace(HOSTS, '"3c:ec:ef:20:01:11"', '"3c:ec:ef:20:01"'),
        "{d}/hosts.yaml:12: hosts[0].interfaces[1].mac: expected a MAC address like 3c:ec:ef:20:01:10, "
        "got '3c:ec:ef:20:01'",
        real_process=True,
    ),
    Case(
        "bad-bmc-url",
        replace(HOSTS, "url: https://10.0.1.21", "url: https://10.0.1.21/redfish/v1"),
        "{d}/hosts.yaml:14: hosts[0].bmc.url: expected http(s)://host[:port] with no path, "
        "got 'https://10.0.1.21/redfish/v1'",
        real_process=True,
    ),
    Case(
        "bad-bmc-system",
        replace(HOSTS, "system: /redfish/v1/Systems/1", "system: /Systems/1"),
        "{d}/hosts.yaml:15: hosts[0].bmc.system: expected a path under /redfish/v1/Systems/, "
        "got '/Systems/1'",
    ),
    Case(
        "credentials-in-clear",
        replace(HOSTS, "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: admin:hunter2"),
        "{d}/hosts.yaml:16: hosts[0].bmc.credentials: expected env:NAME or file:PATH "
        "(never the secret itself), got a literal of 13 characters",
        real_process=True,
    ),
    Case(
        "credentials-bad-env-name",
        replace(HOSTS, "credentials: env:INFERNO_BMC_COMPUTE_1", "credentials: env:1-BAD"),
        "{d}/hosts.yaml:16: hosts[0].bmc.credentials: expected env:NAME or file:PATH "
        "(never the secret itself), got env:<not a variable name>",
    ),
    Case(
        "bmc-password-key",
        replace(
            HOSTS,
            "      verify_tls: true\n  - name: inferno-host-exper-1",
            "      verify_tls: true\n      password: hunter2\n  - name: inferno-host-exper-1",
        ),
        "{d}/hosts.yaml:18: hosts[0].bmc.password: expected only known fields, got unknown field",
    ),
    Case(
        "verify-tls-word",
        replace(
            HOSTS,
            "verify_tls: true\n  - name: inferno-host-exper-1",
            "verify_tls: 'yes'\n  - name: inferno-host-exper-1",
        ),
        "{d}/hosts.yaml:17: hosts[0].bmc.verify_tls: expected true, false or a CA bundle path, got 'yes'",
    ),
    Case(
        "bad-cidr",
        replace(HOSTS, "address: 10.0.2.11/24", "address: 10.0.2.11"),
        "{d}/hosts.yaml:11: hosts[0].interfaces[0].address: expected an IPv4 address in CIDR form like "
        "10.0.1.11/24, got '10.0.2.11'",
    ),
    Case(
        "outlet-zero",
        replace(HOSTS, "pdu_outlet: 1", "pdu_outlet: 0"),
        "{d}/hosts.yaml:8: hosts[0].pdu_outlet: expected a value > 0, got 0",
    ),
    Case(
        "port-too-big",
        lambda d: (d / HOSTS).write_text((d / HOSTS).read_text() + "    ssh_port: 70000\n"),
        "{d}/hosts.yaml:46: hosts[2].ssh_port: expected a value < 65536, got 70000",
    ),
    Case(
        "host-missing-rack",
        replace(HOSTS, "    rack: circle-2-lust\n", ""),
        "{d}/hosts.yaml:4: hosts[0].rack: expected a value (the field is required), got nothing",
    ),
    Case(
        "unknown-profile",
        replace(HOSTS, "profile: circle-2-lust", "profile: circle-3-gluttony"),
        "{d}/hosts.yaml:5: hosts[0].profile: expected one of circle-1-limbo, circle-2-lust, circle-6-heresy, "
        "got 'circle-3-gluttony'",
        real_process=True,
    ),
    Case(
        "duplicate-host",
        replace(HOSTS, "name: inferno-host-exper-1", "name: inferno-host-compute-1"),
        "{d}/hosts.yaml:18: hosts[1].name: expected a unique host name, got 'inferno-host-compute-1' again "
        "(first at line 4)",
        real_process=True,
    ),
    Case(
        "hosts-not-a-list",
        write(HOSTS, b"hosts: 3\n"),
        "{d}/hosts.yaml:1: hosts: expected a list, got 3",
    ),
    Case(
        "hosts-key-missing",
        write(HOSTS, b"inventory: []\n"),
        "{d}/hosts.yaml:1: hosts: expected a value (the field is required), got nothing",
    ),
    Case(
        "hosts-empty",
        write(HOSTS, b"# nothing yet\n"),
        "{d}/hosts.yaml:1: (top level): expected a mapping with 'hosts', got an empty file",
    ),
    Case(
        "hosts-file-missing",
        remove(HOSTS),
        "{d}/hosts.yaml: expected a YAML file, got no such file",
        real_process=True,
    ),
    Case(
        "profiles-dir-missing",
        lambda d: shutil.rmtree(d),
        "{d}: expected a profiles directory, got no such directory",
        real_process=True,
    ),
]


def _prepared(tmp_path: Path, case: Case) -> Path:
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    case.edit(d)
    return d


def test_the_table_covers_at_least_25_kinds() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_loader_gives_one_exact_line(tmp_path: Path, case: Case) -> None:
    d = _prepared(tmp_path, case)
    with pytest.raises(BadInput) as exc:
        load_catalog(d)
    assert str(exc.value) == case.message.format(d=d)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_prints_the_line_and_exits_2(
    tmp_path: Path, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _prepared(tmp_path, case)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--profiles", str(d), "--state", str(tmp_path / "state"), "lint"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert (out, err) == ("", f"provision: {case.message.format(d=d)}\n")


REAL = [c for c in CASES if c.real_process]


@pytest.mark.parametrize("case", REAL, ids=[c.id for c in REAL])
def test_real_provision_process_shows_no_traceback(tmp_path: Path, case: Case) -> None:
    if not PROVISION.exists():
        pytest.skip(f"{PROVISION} is not installed (make setup installs it)")
    d = _prepared(tmp_path, case)
    command = ["show", "inferno-host-compute-1"] if case.id.startswith("hosts") else ["lint"]
    proc = subprocess.run(
        [str(PROVISION), "--profiles", str(d), "--state", str(tmp_path / "state"), *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"provision: {case.message.format(d=d)}\n"
    assert "Traceback" not in proc.stderr


def test_the_secret_never_reaches_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.id == "credentials-in-clear")
    d = _prepared(tmp_path, case)
    with pytest.raises(SystemExit):
        cli.main(["--profiles", str(d), "--state", str(tmp_path / "state"), "lint"])
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err
