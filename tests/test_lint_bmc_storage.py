"""`provision lint`: a `bmc.verify_tls` path must name a readable file (not "maybe", found only at use),
and each storage class' `seed_capacity` must be a capacity that agrees with its `capacity_bytes`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from provision.lint.catalog import LintFinding, lint_catalog
from provision.model.catalog import load_catalog

FIXTURE = Path(__file__).parent / "data" / "profiles"


def _lint(tmp_path: Path, name: str, old: str, new: str) -> list[LintFinding]:
    d = tmp_path / "profiles"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("*.md"))
    text = (d / name).read_text()
    assert old in text, f"stale: {old!r} is not in {name}"
    (d / name).write_text(text.replace(old, new, 1))
    return [
        f for f in lint_catalog(load_catalog(d)) if f.code in ("host.bmc-tls-file", "storage.seed-capacity")
    ]


def _seen(found: list[LintFinding]) -> list[tuple[str, str, int, str, str]]:
    return [(str(f.severity), f.code, f.line, f.field, f.message) for f in found]


def test_shipped_profiles_have_no_such_problem(tmp_path: Path) -> None:
    assert _lint(tmp_path, "hosts.yaml", "verify_tls: true", "verify_tls: true") == []


def test_verify_tls_maybe_is_no_file(tmp_path: Path) -> None:
    found = _lint(tmp_path, "hosts.yaml", "verify_tls: true", "verify_tls: maybe")
    assert _seen(found) == [
        (
            "error",
            "host.bmc-tls-file",
            17,
            "hosts[0].bmc.verify_tls",
            "expected a readable CA bundle file, got 'maybe' (No such file or directory)",
        )
    ]


def test_verify_tls_a_directory_or_unreadable_file_is_refused_and_a_bundle_passes(tmp_path: Path) -> None:
    found = _lint(tmp_path, "hosts.yaml", "verify_tls: true", f"verify_tls: {tmp_path}")
    assert [f.message for f in found] == [
        f"expected a readable CA bundle file, got '{tmp_path}' (not a regular file)"
    ]
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert _lint(tmp_path / "b", "hosts.yaml", "verify_tls: true", f"verify_tls: {bundle}") == []
    if os.geteuid() != 0:  # root reads any file
        bundle.chmod(0)
        found = _lint(tmp_path / "c", "hosts.yaml", "verify_tls: true", f"verify_tls: {bundle}")
        assert [f.message for f in found] == [
            f"expected a readable CA bundle file, got '{bundle}' (not readable)"
        ]


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("32 parsecs", 'expected a capacity such as "3.84 TB", "960 GB" or "1 GiB", got \'32 parsecs\''),
        ('"3.84"', 'expected a capacity such as "3.84 TB", "960 GB" or "1 GiB", got \'3.84\''),
        (
            "1.92 TB",
            "expected about 3,840,755,982,336 bytes (capacity_bytes, within 3%), "
            "got '1.92 TB' = 1,920,000,000,000 bytes",
        ),
        (
            "3.84 TiB",
            "expected about 3,840,755,982,336 bytes (capacity_bytes, within 3%), "
            "got '3.84 TiB' = 4,222,124,650,660 bytes",
        ),
    ],
)
def test_seed_capacity_must_parse_and_agree(tmp_path: Path, seed: str, message: str) -> None:
    found = _lint(tmp_path, "circle-2-lust.yaml", "seed_capacity: 3.84 TB", f"seed_capacity: {seed}")
    assert _seen(found) == [("error", "storage.seed-capacity", 67, "storage[1].seed_capacity", message)]


@pytest.mark.parametrize("seed", ["3840 GB", "3.84TB", "3.5 TiB", "3840755982336 B"])
def test_seed_capacity_spellings_that_agree_pass(tmp_path: Path, seed: str) -> None:
    assert _lint(tmp_path, "circle-2-lust.yaml", "seed_capacity: 3.84 TB", f"seed_capacity: {seed}") == []
