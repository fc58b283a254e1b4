from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"


@pytest.fixture
def profiles_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped profiles, for tests that edit them."""
    dst = tmp_path / "profiles"
    shutil.copytree(PROFILES, dst)
    return dst


def require_tool(name: str) -> str:
    """The path of a tool the test drives for real; skip, with the reason, where it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} is not installed here (make setup installs it)")
    return path
