"""`provision lint`: the image files a profile's `firmware:` baseline names must be there, readable,
and the very files their `sha256` pins; found at lint time, not halfway through a `provision host`.

The one profile rule that reads files (as the hosts' `verify_tls` CA bundle rule does): an image is
hashed as it is read, never held in memory whole. A URL image is the BMC's to fetch: not read here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from provision.lint.finding import Findings
from provision.model.firmware import ComponentBaseline
from provision.model.profile import Profile
from provision.model.yamlfile import Document


def _digest(path: Path) -> tuple[str | None, str]:
    """(sha256, "") of a readable regular file; (None, why) otherwise."""
    if not path.exists():
        return None, f"no such file: {path}"
    if not path.is_file():
        return None, f"not a regular file: {path}"
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest(), ""
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or type(exc).__name__}"


def _image(kind: str, rule: ComponentBaseline, profiles_dir: Path, doc: Document, out: Findings) -> None:
    path = rule.image_file(profiles_dir)
    if path is None:
        return
    at = ("firmware", "baseline", kind)
    digest, why = _digest(path)
    if digest is None:
        out.error("firmware.image-file", doc, (*at, "image"), f"expected a readable image file, got {why}")
    elif rule.sha256 is None:
        out.info(
            "firmware.image-unpinned",
            doc,
            (*at, "image"),
            f"the file's sha256 is {digest}: add `sha256: {digest}` to refuse any other file",
        )
    elif digest != rule.sha256:
        out.error(
            "firmware.image-sha256",
            doc,
            (*at, "sha256"),
            f"expected the sha256 of {path.name} to be {rule.sha256}, got {digest}: not the image pinned",
        )


def check(p: Profile, doc: Document, out: Findings, profiles_dir: Path) -> None:
    if p.firmware is None:
        return
    for kind, rule in p.firmware.baseline.items():
        _image(kind.value, rule, profiles_dir, doc, out)


__all__ = ["check"]
