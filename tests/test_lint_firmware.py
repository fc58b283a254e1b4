"""`provision lint`: a `firmware:` baseline's image file must exist, be readable, and match its
`sha256` where the profile pins one (lint computes it); a URL image is not read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from provision.lint.catalog import LintFinding, lint_catalog
from provision.model.catalog import load_catalog
from tests.support.redfish_rig import cli
from tests.test_firmware_inventory import with_baseline

PROFILE = "circle-2-lust.yaml"


def _lint(profiles: Path, bios: dict[str, Any]) -> list[tuple[str, str, int, str, str]]:
    with_baseline(profiles, {"baseline": {"bios": {"minimum": "3.2", "image_version": "3.2", **bios}}})
    found: list[LintFinding] = [
        f for f in lint_catalog(load_catalog(profiles)) if f.code.startswith("firmware.")
    ]
    text = (profiles / PROFILE).read_text().splitlines()
    # Each finding names the line of its own field.
    for f in found:
        assert f.file.endswith(PROFILE) and text[f.line - 1].strip().startswith(
            f.field.rsplit(".", 1)[-1] + ":"
        )
    return [(str(f.severity), f.code, f.line, f.field, f.message) for f in found]


def _image(profiles: Path) -> tuple[Path, str]:
    img = profiles / "images" / "bios-3.2.bin"
    img.parent.mkdir()
    img.write_bytes(b"VERSION 3.2\n" + b"\0" * 4096)
    return img, hashlib.sha256(img.read_bytes()).hexdigest()


def test_a_pinned_image_that_matches_is_clean_and_an_unpinned_one_gets_its_sha256(
    profiles_copy: Path,
) -> None:
    _, digest = _image(profiles_copy)
    assert _lint(profiles_copy, {"image": "images/bios-3.2.bin", "sha256": digest}) == []
    [(severity, code, _, field, message)] = _lint(profiles_copy, {"image": "images/bios-3.2.bin"})
    assert (severity, code, field) == ("info", "firmware.image-unpinned", "firmware.baseline.bios.image")
    assert message == f"the file's sha256 is {digest}: add `sha256: {digest}` to refuse any other file"
    assert _lint(profiles_copy, {"image": "http://10.0.1.5/bios-3.2.bin"}) == []  # the BMC's to fetch


def test_a_missing_unreadable_or_different_image_is_an_error(profiles_copy: Path) -> None:
    img, digest = _image(profiles_copy)
    [(sev, code, _, field, message)] = _lint(profiles_copy, {"image": "images/bios-3.3.bin"})
    assert (sev, code, field) == ("error", "firmware.image-file", "firmware.baseline.bios.image")
    assert (
        message
        == f"expected a readable image file, got no such file: {profiles_copy / 'images/bios-3.3.bin'}"
    )
    [(sev, code, _, field, message)] = _lint(profiles_copy, {"image": "images"})
    assert message == f"expected a readable image file, got not a regular file: {profiles_copy / 'images'}"
    other = "0" * 64
    [(sev, code, _, field, message)] = _lint(profiles_copy, {"image": str(img), "sha256": other})
    assert (sev, code, field) == ("error", "firmware.image-sha256", "firmware.baseline.bios.sha256")
    assert message == f"expected the sha256 of bios-3.2.bin to be {other}, got {digest}: not the image pinned"


def test_lint_exits_non_zero_and_the_model_refuses_a_sha256_without_a_local_file(
    profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_baseline(
        profiles_copy,
        {"baseline": {"bios": {"minimum": "3.2", "image": "images/none.bin", "image_version": "3.2"}}},
    )
    rc, out, _ = cli(["--profiles", str(profiles_copy), "lint", "--json"], capsys)
    assert rc != 0
    assert "firmware.image-file" in out and "no such file" in out
    with_baseline(
        profiles_copy,
        {
            "baseline": {
                "bios": {
                    "minimum": "3.2",
                    "image": "http://x/b.bin",
                    "image_version": "3.2",
                    "sha256": "a" * 64,
                }
            }
        },
    )
    rc, _, err = cli(["--profiles", str(profiles_copy), "lint"], capsys)
    assert rc == 2 and "`sha256` pins a local `image` file" in err
    assert json.dumps(err).count("\\n") == 1  # one line, no traceback
