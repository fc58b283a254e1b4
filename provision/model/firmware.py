"""A profile's optional `firmware:` block: the versions each kind of component may run, and how
strictly identical parts must agree. Pure: typed, frozen models and the version order.

    firmware:
      uniformity: fail            # fail | warn: identical parts (same model) on different firmware
      baseline:
        bmc: {minimum: "01.04.08"}
        gpu: {allowed: ["96.00.89.00.01", "96.00.9F.00.01"], model: "NVIDIA L40S"}
        drive: {minimum: "GDC5902Q", image: "images/pm9a3-GDC7102Q.bin", image_version: "GDC7102Q",
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}

`image` (a file the boot server serves, or an http(s) URL) with `image_version` (what the image
installs) lets `provision host` bring a component up to its baseline before the install. A relative
file path is relative to the profiles directory. `sha256` (optional, a local file only) pins the
file: `provision lint` checks it, and no update starts from a file that differs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(text: str | None) -> tuple[tuple[int, int | str], ...] | None:
    """'1.10a' -> ((0, 1), (0, 10), (1, 'a')): numeric parts compare as numbers. None: no digits."""
    parts = _VERSION_PART.findall(text or "")
    if not any(p.isdigit() for p in parts):
        return None
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts)


class FirmwareKind(StrEnum):
    """The kinds of component firmware the inventory names (FirmwareInventory and each part's own)."""

    bios = "bios"
    bmc = "bmc"
    cpld = "cpld"
    gpu = "gpu"
    drive = "drive"
    nic = "nic"
    psu = "psu"
    storage_controller = "storage_controller"


class UniformityPolicy(StrEnum):
    fail = "fail"
    warn = "warn"


class ComponentBaseline(BaseModel):
    """One kind of component's rule: `allowed` versions, or a `minimum` (exactly one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: tuple[str, ...] = ()
    minimum: str | None = None
    model: str | None = Field(default=None, min_length=1)  # only parts whose model contains this
    image: str | None = Field(default=None, min_length=1)
    image_version: str | None = Field(default=None, min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_rule(self) -> ComponentBaseline:
        if bool(self.allowed) == (self.minimum is not None):
            raise ValueError("expected exactly one of `allowed` (a list of versions) or `minimum`")
        if self.minimum is not None and version_key(self.minimum) is None:
            raise ValueError(f"minimum {self.minimum!r} is not a version (it has no digits to order by)")
        if (self.image is None) != (self.image_version is None):
            raise ValueError("`image` and `image_version` go together: the image and the version it installs")
        if self.sha256 is not None and (self.image is None or self.image.startswith(("http://", "https://"))):
            raise ValueError("`sha256` pins a local `image` file (a URL the BMC fetches is never read here)")
        if self.image_version is not None and not self.satisfied_by(self.image_version):
            raise ValueError(f"image_version {self.image_version!r} does not meet the baseline ({self.rule})")
        return self

    @property
    def rule(self) -> str:
        return f"one of {', '.join(self.allowed)}" if self.allowed else f">= {self.minimum}"

    def satisfied_by(self, version: str) -> bool | None:
        """True/False; None where `version` cannot be ordered against the minimum."""
        if self.allowed:
            return version.strip() in {a.strip() for a in self.allowed}
        have, want = version_key(version), version_key(self.minimum)
        return None if have is None or want is None else have >= want

    def image_file(self, profiles_dir: Path) -> Path | None:
        """The local image file (relative to the profiles directory); None for a URL or no image."""
        if self.image is None or self.image.startswith(("http://", "https://")):
            return None
        path = Path(self.image).expanduser()
        return path if path.is_absolute() else profiles_dir / path

    def applies_to(self, model: str | None) -> bool:
        return self.model is None or (model is not None and self.model.casefold() in model.casefold())


class FirmwareBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uniformity: UniformityPolicy = UniformityPolicy.fail
    baseline: dict[FirmwareKind, ComponentBaseline] = {}


__all__ = ["ComponentBaseline", "FirmwareBaseline", "FirmwareKind", "UniformityPolicy", "version_key"]
