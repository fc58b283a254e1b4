"""Adapter: the lab's boot payload, built once per machine and cached.

- the Debian disk image that plays the installed OS (assets/build-image.sh, debootstrap: minutes,
  once), with the kernel the installer stand-in boots;
- the installer stand-in's initrd (assets/build-installer.sh, about a second), rebuilt whenever
  its scripts change.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from provision.lab import system
from provision.model.errors import ToolError

ASSETS = Path(__file__).resolve().parent / "assets"
IMAGE = "debian-lab.img.zst"


def default_cache_dir() -> Path:
    env = os.environ.get("PROVISION_LAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inferno-provision" / "lab"


@dataclass(frozen=True)
class Payload:
    kernel: Path  # the image's own kernel, also the installer's
    installer_initrd: Path
    image: Path  # zstd-compressed raw disk image
    image_info: dict[str, object]


def _installer_key() -> str:
    h = hashlib.sha256()
    for name in ("build-installer.sh", "installer-init.sh", "kernel-append.sh"):
        h.update((ASSETS / name).read_bytes())
    return h.hexdigest()[:16]


def ensure_payload(cache: Path, *, build: bool = True) -> Payload:
    cache.mkdir(parents=True, exist_ok=True)
    info_path = cache / "debian-lab.json"
    if not (cache / IMAGE).is_file() or not info_path.is_file():
        if not build:
            raise ToolError(f"{cache / IMAGE}: the lab image is not built (run `provision lab up` once)")
        system.run([str(ASSETS / "build-image.sh"), str(cache)], timeout_s=1800)
    initrd = cache / f"installer-{_installer_key()}.img"
    if not initrd.is_file():
        for old in cache.glob("installer-*.img"):
            old.unlink()
        system.run([str(ASSETS / "build-installer.sh"), str(cache), str(initrd)], timeout_s=300)
    info = json.loads(info_path.read_text())
    return Payload(kernel=cache / "vmlinuz", installer_initrd=initrd, image=cache / IMAGE, image_info=info)


def publish(payload: Payload, tree: Path) -> None:
    """Lay the payload out like an install tree: images/pxeboot/{vmlinuz,initrd.img} and lab/."""
    pxe = tree / "images" / "pxeboot"
    lab = tree / "lab"
    pxe.mkdir(parents=True, exist_ok=True)
    lab.mkdir(parents=True, exist_ok=True)
    for link, target in (
        (pxe / "vmlinuz", payload.kernel),
        (pxe / "initrd.img", payload.installer_initrd),
        (lab / IMAGE, payload.image),
    ):
        link.unlink(missing_ok=True)
        link.symlink_to(target)
