"""A reader that goes away (`provision show HOST --json | head -c 10`): silent, exit 141 as a shell tool
killed by SIGPIPE, never exit 1 (a failed verdict) and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.cli.main import PIPE_CLOSED

REPO = Path(__file__).resolve().parents[1]
PROVISION = Path(sys.executable).parent / "provision"


@pytest.mark.parametrize("args", [["--json"], []], ids=["json", "text"])
def test_output_into_a_closed_pipe_exits_141_silently(tmp_path: Path, args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write meets EPIPE
    try:
        proc = subprocess.run(
            [str(PROVISION), "--state", str(tmp_path / "state"), "show", "inferno-host-compute-1", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == PIPE_CLOSED == 141
    assert proc.stderr == ""


def test_output_into_an_open_pipe_still_exits_0(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PROVISION), "--state", str(tmp_path / "state"), "show", "inferno-host-compute-1", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"host"' in proc.stdout
