"""Builds the stand-in libcuda (tests/support/fake_libcuda.c) with the host's C compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool

SOURCE = Path(__file__).parent / "fake_libcuda.c"


def build_libcuda(directory: Path) -> str:
    cc = require_tool("cc")
    out = directory / "libcuda.so.1"
    subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(SOURCE), "-lm"], check=True, timeout=120
    )
    return str(out)
