"""The lab installer stand-in's `bootloader --append` step (provision/lab/assets/kernel-append.sh),
run by the static busybox the installer's initrd carries, on the grub.cfg the lab image is built
with and the kickstart `provision` renders for a lab host from the profiles `lab up` writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.install.render import kickstart_for
from provision.lab.artifacts import ASSETS
from provision.model.catalog import load_catalog
from tests.support.labprofiles import lab_profiles

APPEND = ASSETS / "kernel-append.sh"
KV, UUID = "6.1.0-50-amd64", "9204fec7-97b4-466b-9d72-2b6c7a3aa6cf"


def _image_grub_cfg() -> str:
    """The grub.cfg build-image.sh writes into the lab image, with its kernel and root filled in."""
    script = (ASSETS / "build-image.sh").read_text()
    m = re.search(r'cat > "\$ROOT/boot/grub/grub\.cfg" <<CFG\n(.*?)\nCFG\n', script, re.S)
    assert m, "build-image.sh no longer writes grub.cfg from a heredoc"
    return m[1].replace("$KV", KV).replace("$UUID", UUID) + "\n"


@pytest.fixture
def busybox(tmp_path: Path) -> list[str]:
    """`busybox sh` with busybox's own sed, grep and head first on PATH, as in the initrd."""
    found = shutil.which("busybox")
    assert found, "busybox is not installed (make setup installs busybox-static)"
    bin_dir = tmp_path / "bb"
    bin_dir.mkdir()
    for applet in ("sed", "grep", "head"):
        (bin_dir / applet).symlink_to(found)
    return ["env", f"PATH={bin_dir}", found, "sh", str(APPEND)]


def _append(busybox: list[str], ks: Path, cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*busybox, str(ks), str(cfg)], capture_output=True, text=True, timeout=30)


def test_the_lab_profile_kernel_args_reach_the_installed_kernel_line(
    tmp_path: Path, busybox: list[str]
) -> None:
    lab, _ = lab_profiles(tmp_path)
    catalog = load_catalog(lab.profiles)
    host = catalog.hosts["lab-node-1"]
    ks = tmp_path / "ks.cfg"
    ks.write_text(kickstart_for(catalog, host, "labtoken123", "http://10.77.0.1:8080"))
    assert 'bootloader --timeout=5 --append="nvme_core.io_timeout=90 console=ttyS0,115200"' in ks.read_text()
    cfg = tmp_path / "grub.cfg"
    before = _image_grub_cfg()
    cfg.write_text(before)
    done = _append(busybox, ks, cfg)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "nvme_core.io_timeout=90 console=ttyS0,115200\n",
        "",
    )
    args = "ro console=tty0 console=ttyS0,115200 net.ifnames=0 quiet"
    linux = f"  linux /boot/vmlinuz-{KV} root=UUID={UUID} {args}"
    assert linux in before.splitlines()
    assert cfg.read_text() == before.replace(linux, f"{linux} nvme_core.io_timeout=90 console=ttyS0,115200")


@pytest.mark.parametrize(
    ("ks_line", "rc", "stderr"),
    [
        ("bootloader --timeout=5\n", 0, ""),  # nothing to append: the kernel line stays
        (
            'bootloader --append="quiet; reboot"\n',
            1,
            "kernel-append: refused, outside the kernel argument grammar: quiet; reboot\n",
        ),
        (
            'bootloader --append="a|b"\n',
            1,
            "kernel-append: refused, outside the kernel argument grammar: a|b\n",
        ),
    ],
)
def test_what_the_stand_in_refuses_or_leaves(
    tmp_path: Path, busybox: list[str], ks_line: str, rc: int, stderr: str
) -> None:
    ks, cfg = tmp_path / "ks.cfg", tmp_path / "grub.cfg"
    ks.write_text(ks_line)
    before = _image_grub_cfg()
    cfg.write_text(before)
    done = _append(busybox, ks, cfg)
    assert (done.returncode, done.stdout, done.stderr) == (rc, "", stderr)
    assert cfg.read_text() == before


def test_a_grub_cfg_without_the_kernel_line_fails_the_install(tmp_path: Path, busybox: list[str]) -> None:
    ks, cfg = tmp_path / "ks.cfg", tmp_path / "grub.cfg"
    ks.write_text('bootloader --append="nvme_core.io_timeout=90"\n')
    cfg.write_text("set timeout=1\n")
    done = _append(busybox, ks, cfg)
    assert (done.returncode, done.stderr) == (1, f"kernel-append: no kernel line in {cfg}\n")
