"""Issue #16's reproductions of hostile and loose values (items 1 and 9), each through the CLI: `lint`
and `kickstart` both refuse them with one exact line; then the templates' own quoting, on specs built
by hand past the models (the second line of defence)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from kickstart.render import RenderError, render_kickstart
from provision.cli import main as cli
from tests.test_bad_input import FIXTURE
from tests.test_kickstart import parse
from tests.test_netboot_render import _spec

HOST = "inferno-host-compute-1"
LUST = "circle-2-lust.yaml"
HOSTS = "hosts.yaml"
SITE = "site.yaml"
# The frozen fixture has no site.yaml: this one's lines are named by the table.
SITE_TEXT = """mirror_url: http://10.0.1.5/rocky/9.3
arch: x86_64
extra_repos:
  - {name: epel, url: "http://10.0.1.5/epel/9/Everything/x86_64"}
admin:
  name: inferno
  ssh_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLRr3KCeeGABSsmWhooIzaAHB3y5si+qAdxi7xA4DC6 op@inferno]
ntp_servers: [10.0.1.53]
packages: [hwloc]
"""
ETH0 = (
    '{name: eth0, mac: "3c:ec:ef:20:01:10", address: 10.0.2.11/24, gateway: 10.0.2.1, '
    "nameservers: [10.0.1.53]}"
)


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    old: str
    new: str
    message: str  # {d}: the profiles directory; lint and kickstart both print it
    lint_finding: str = ""  # a rule between files: lint reports this finding instead (exit 2)


def _eth0(old: str, new: str) -> str:
    return ETH0.replace(old, new)


CASES = [
    Case("tuned-profile-command-substitution", LUST, "tuned_profile: hpc-compute",
         'tuned_profile: "hpc-compute$(touch /tmp/x)"',
         "{d}/circle-2-lust.yaml:98: platform.os.tuned_profile: expected one tuned profile name "
         "(letters, digits, . _ -), got 'hpc-compute$(touch /tmp/x)'"),
    Case("os-name-double-quote", LUST, "    name: Rocky Linux", "    name: 'Rocky \"Linux'",
         "{d}/circle-2-lust.yaml:96: platform.os.name: expected an OS name (words of letters, digits, "
         """. _ + - separated by single spaces), got 'Rocky "Linux'"""),
    Case("site-arch-newline", SITE, "arch: x86_64", r'arch: "x86_64\n%post\ntouch /tmp/x\n%end"',
         "{d}/site.yaml:2: arch: expected one of x86_64, aarch64, ppc64le or s390x, "
         r"got 'x86_64\n%post\ntouch /tmp/x\n%end'"),
    Case("site-packages-newline", SITE, "packages: [hwloc]", r'packages: ["hwloc\n%pre\nreboot\n%end"]',
         "{d}/site.yaml:9: packages[0]: expected a package name (letters, digits, . _ + -; @group or "
         r"-excluded), got 'hwloc\n%pre\nreboot\n%end'"),
    Case("gpu-name-newline", LUST, "  name: NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
         r'  name: "NVIDIA L40S\n%post\nreboot\n%end"',
         "{d}/circle-2-lust.yaml:39: gpus.name: expected a GPU name of printable ASCII without quotes, "
         r"backticks, $ or \ (at most 96), got 'NVIDIA L40S\n%post\nreboot\n%end'"),
    Case("interface-name-newline", HOSTS, ETH0, _eth0("name: eth0", r'name: "eth0\n%pre\nreboot\n%end"'),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].name: expected an interface name (letters, digits, "
         r"_ . -), got 'eth0\n%pre\nreboot\n%end'"),
    Case("nameserver-newline", HOSTS, ETH0, _eth0("[10.0.1.53]", r'["10.0.1.53\n%pre\nreboot\n%end"]'),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].nameservers[0]: expected an IP address like "
         r"10.0.1.53, got '10.0.1.53\n%pre\nreboot\n%end'"),
    Case("nameserver-ipv6-scope", HOSTS, ETH0, _eth0("[10.0.1.53]", '["fe80::1%$(reboot)"]'),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].nameservers[0]: expected an IP address like "
         "10.0.1.53, got 'fe80::1%$(reboot)'"),
    Case("kernel-arg-newline", LUST, "kernel_args: [iommu=pt,", r'kernel_args: ["iommu=pt\n%post",',
         "{d}/circle-2-lust.yaml:99: platform.os.kernel_args[0]: expected a kernel argument key or "
         "key=value (letters, digits, _ . - in the key; also : / , + = in the value), "
         r"got 'iommu=pt\n%post'"),
    Case("gateway-adds-an-option", HOSTS, ETH0,
         _eth0("gateway: 10.0.2.1", 'gateway: "10.0.2.1 --bootproto=dhcp"'),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].gateway: expected an IP address like 10.0.1.53, "
         "got '10.0.2.1 --bootproto=dhcp'"),
    Case("impossible-address", HOSTS, ETH0, _eth0("10.0.2.11/24", "999.0.2.11/99"),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].address: expected an IPv4 address (four numbers "
         "0-255) with a prefix of 1-32, got '999.0.2.11/99'"),
    Case("network-address-as-host", HOSTS, ETH0, _eth0("10.0.2.11/24", "10.0.2.0/24"),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].address: expected a host address of its network "
         "(not the network, broadcast, 0.0.0.0, multicast or reserved address), got '10.0.2.0/24'"),
    Case("gateway-outside-its-subnet", HOSTS, ETH0, _eth0("gateway: 10.0.2.1", "gateway: 10.0.3.1"),
         "{d}/hosts.yaml:11: hosts[0].interfaces[0].gateway: expected a gateway inside 10.0.2.0/24 "
         "other than 10.0.2.11, got '10.0.3.1'"),
    Case("outlet-of-32-digits", HOSTS, "pdu_outlet: 1", "pdu_outlet: " + "9" * 32,
         "{d}/hosts.yaml:8: hosts[0].pdu_outlet: expected a value <= 1000, got " + "9" * 32),
    Case("hostile-value-is-cut-short", LUST, "tuned_profile: hpc-compute", "tuned_profile: " + "$" * 65536,
         "{d}/circle-2-lust.yaml:98: platform.os.tuned_profile: expected one tuned profile name "
         "(letters, digits, . _ -), got '" + "$" * 47 + "... (65536 characters)"),
    Case("boot-mac-not-an-interface", HOSTS, 'boot_mac: "3c:ec:ef:20:01:10"', 'boot_mac: "3c:ec:ef:20:01:99"',
         "{d}/hosts.yaml:9: hosts[inferno-host-compute-1].boot_mac: expected the MAC of one of the host's "
         "interfaces (3c:ec:ef:20:01:10, 3c:ec:ef:20:01:11), got 3c:ec:ef:20:01:99",
         lint_finding="{d}/hosts.yaml:9: error: hosts[0].boot_mac: expected the MAC of one of the host's "
         "interfaces (3c:ec:ef:20:01:10, 3c:ec:ef:20:01:11), got 3c:ec:ef:20:01:99"),
    Case("ssh-user-the-kickstart-gives-no-keys", HOSTS,
         "pdu_outlet: 1\n", "pdu_outlet: 1\n    ssh_user: bob\n",
         "{d}/hosts.yaml:9: hosts[inferno-host-compute-1].ssh_user: expected root or the site's admin "
         "'inferno' (the accounts the kickstart gives the operators' keys), got 'bob'",
         lint_finding="{d}/hosts.yaml:9: error: hosts[0].ssh_user: expected root or the site's admin "
         "'inferno' (the accounts the kickstart gives the operators' keys), got 'bob'"),
]  # fmt: skip


def _prepared(tmp_path: Path, case: Case) -> Path:
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    (d / SITE).write_text(SITE_TEXT)
    text = (d / case.file).read_text()
    assert case.old in text, f"the table is stale: {case.old!r} is not in {case.file}"
    (d / case.file).write_text(text.replace(case.old, case.new, 1))
    return d


def _run(capsys: pytest.CaptureFixture[str], d: Path, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["--profiles", str(d), "--state", str(d.parent / "state"), *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lint_and_kickstart_refuse_it_with_one_exact_line(
    tmp_path: Path, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _prepared(tmp_path, case)
    code, out, err = _run(capsys, d, "lint")
    if case.lint_finding:
        assert code == 2 and case.lint_finding.format(d=d) in out.splitlines()
    else:
        assert (code, out, err) == (2, "", f"provision: {case.message.format(d=d)}\n")
    assert _run(capsys, d, "kickstart", HOST) == (2, "", f"provision: {case.message.format(d=d)}\n")


# The second line of defence: values that never pass the models, put straight into a spec.
@pytest.mark.parametrize(
    "change",
    [
        {"tuned_profile": "hpc\n%post\nreboot"},
        {"os_name": "Rocky\r\n%pre"},
        {"packages": ("fio", "%post")},
        {"admin_user": "inferno\x00"},
        {"timezone": "--isUtc"},
    ],
    ids=["newline-in-post", "carriage-return", "section-as-package", "nul", "option-as-argument"],
)
def test_templates_refuse_what_no_quoting_can_hold(change: dict[str, object]) -> None:
    with pytest.raises(RenderError, match="template value: expected"):
        render_kickstart(replace(_spec(), **change))  # type: ignore[arg-type]


def test_templates_quote_shell_and_kickstart_values_past_the_models() -> None:
    spec = _spec()
    nic = replace(spec.interfaces[0], gateway="10.0.2.1 --bootproto=dhcp")
    hostile = replace(
        spec,
        tuned_profile="hpc-compute$(touch /tmp/x)",
        os_name='Rocky "Linux`id`',
        interfaces=(nic, *spec.interfaces[1:]),
        ntp_servers=("ntp#1 --nts",),
    )
    text = render_kickstart(hostile)
    assert "echo 'hpc-compute$(touch /tmp/x)' > /etc/tuned/active_profile" in text
    assert "--label 'Rocky \"Linux`id`'\" ($(basename" in text
    handler = parse(text).handler
    assert handler.network.network[0].gateway == "10.0.2.1 --bootproto=dhcp"
    assert handler.network.network[0].bootProto == "static"
    assert [s.ntp_server for s in handler.timesource.dataList()] == ["ntp#1 --nts"]
    for script in handler.scripts:
        check = subprocess.run(["bash", "-n"], input=script.script, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
